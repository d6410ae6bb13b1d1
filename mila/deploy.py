"""The deploy flow: plan an environment, then carry the plan out.

:func:`prepare` reads the state (one ``records`` call), computes every checksum and calls the
planner; :func:`execute` carries out each changing action with :mod:`mila.runner` (build,
lock, re-read the record, skip what another run already did, mark ``in_progress``, run the
deployer, record success or failure, history row, release).

A plan can be saved (:func:`plan_to_json`) and applied later: :func:`check_saved_plan` refuses
when the code or the state changed since.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from mila.checksums import Checksum, consumed_output_hashes, with_consumed_outputs
from mila.errors import DeployError, MilaError, PlanStale
from mila.locks import DEFAULT_TIMEOUT, DEFAULT_TTL
from mila.logs import get_logger
from mila.model import (
    Action,
    ActionKind,
    Environment,
    Plan,
    Record,
    Status,
    Workspace,
)
from mila.names import check_deployed, check_services
from mila.orchestrator import RunReport
from mila.parameters import consumed_outputs
from mila.planner import plan_deployment, plan_removal, service_regions
from mila.project import Project
from mila.reasons import annotate
from mila.validation import Problem, check_consumers, validate_plan
from mila.variables import (
    OutputRef,
    ResolvedVariable,
    VariableResolver,
    parameter_digests,
    variable_digests,
)

if TYPE_CHECKING:
    from mila.diff import ActionDiff
    from mila.workers import WorkerPlan

log = get_logger("mila.deploy")
ActionKey = tuple[str, str]
PLAN_FILE_VERSION = 1


@dataclass
class Prepared:
    """A plan and everything needed to carry it out or to check it is still current."""

    plan: Plan
    environment: Environment
    records: dict[ActionKey, Record]
    manifests: dict[ActionKey, Mapping[str, Any]] = field(default_factory=dict)
    state_fingerprint: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # how the plan was made (-s, --force)
    #: each planned (service, region)'s environment variables, checked at plan time
    variables: dict[ActionKey, Mapping[str, ResolvedVariable]] = field(default_factory=dict)
    resolver: VariableResolver | None = None  # reused at deploy time (its lookups are cached)
    warnings: list[Problem] = field(default_factory=list)  # plan-time validation warnings
    #: per action: its checksum before the consumed outputs are folded in, and the outputs
    #: (dependency, name) it consumes; the record gets the checksum of the outputs really used
    unfolded: dict[ActionKey, Checksum] = field(default_factory=dict)
    consumed: dict[ActionKey, frozenset[tuple[str, str]]] = field(default_factory=dict)
    #: the resource-level diff of each changing action, when asked (``--diff``, ``mila diff``)
    diffs: dict[ActionKey, ActionDiff] = field(default_factory=dict)

    def inputs_checksum(self, action: Action) -> str | None:
        """``action``'s checksum before the outputs it consumes are folded in: what the code
        and configuration alone give (``mila apply --worker`` compares it to the plan file's)."""
        unfolded = self.unfolded.get(action.key)
        return unfolded.checksum if unfolded is not None else action.checksum

    def final_checksum(self, action: Action, dependency_outputs: Mapping[str, Mapping[str, str]],
                       ) -> tuple[str | None, Mapping[str, Any]]:
        """The checksum and manifest to record for ``action``, given the outputs its
        dependencies really had when it ran."""
        key = action.key
        unfolded = self.unfolded.get(key)
        if unfolded is None:
            return action.checksum, self.manifests.get(key, {})
        c = with_consumed_outputs(unfolded, consumed_output_hashes(self.consumed.get(key, ()),
                                                                   dependency_outputs))
        return c.checksum, c.manifest


def parse_services(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [s.strip() for s in value.split(",") if s.strip()]
    if not names:
        raise MilaError("-s/--services is empty", hint="give names separated by commas: -s api,web")
    return names


def _check_selection(only: Collection[str] | None, project: Project,
                     records: Mapping[ActionKey, Record]) -> None:
    if only is not None:
        check_services(project.graph, only, known={k[0] for k in records})


def state_fingerprint(records: Mapping[ActionKey, Record]) -> str:
    """A digest of what a plan depends on in the state (checksums and statuses)."""
    rows = sorted((k[0], k[1], r.checksum or "", r.status.value, r.deployer)
                  for k, r in records.items())
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def prepare(project: Project, environment: str, *, only: Collection[str] | None = None,
            force: bool = False, regions: Collection[str] | None = None,
            validate: bool = True) -> Prepared:
    """Plan ``environment``: every service (or ``only``) in every region (or ``regions``),
    each action with its reasons; then validate the plan (unless ``validate`` is false, for
    `mila why`) and ask the policy plugins. Refuses (exit 2) before any lock or write."""
    state = project.state
    env = state.get_environment(environment)
    records = {(r.service, r.region): r for r in state.records(environment)}
    _check_selection(only, project, records)
    graph = project.graph
    services = graph.services
    if regions is not None:
        env = replace(env, regions=tuple(r for r in env.regions if r in regions))
    chosen = {s.name for s in services if only is None or s.name in only}  # a set: O(1) lookups
    service_names = {s.name for s in services}
    dependencies = {s.name: [d for d in graph.dependencies(s.name, transitive=True)
                             if d in service_names] for s in services}
    sums = _plan_checksums(project, env, records, chosen, dependencies, regions)
    in_scope = {k: r for k, r in records.items() if regions is None or k[1] in regions}

    def detect(service: Workspace, region: str, current: str, previous: Record | None) -> str | None:
        return cast("str | None", project.pm.hook.mila_detect_change(service=service, environment=environment,
                                                  region=region, current=current,
                                                  previous=previous))

    plan = plan_deployment(env, services, sums.checksums, list(in_scope.values()),
                           dependencies=dependencies, only=only, force=force,
                           detect_change=detect, consumes=sums.consumes, scope=regions)
    plan = annotate(plan, in_scope, sums.manifests,
                    lambda service, region: state.get_manifest(environment, service, region))
    files = sums.resolver.variables if sums.resolver is not None else None
    warnings = validate_plan(project, plan, env, records, variables=files) if validate else []
    check_policies(project, plan)
    return Prepared(plan, env, records, sums.manifests, state_fingerprint(records),
                    {"services": sorted(only) if only is not None else None, "force": force,
                     "regions": sorted(regions) if regions is not None else None},
                    sums.variables, sums.resolver, warnings, sums.unfolded, sums.consumed)


def _variable_outputs(resolved: Mapping[str, ResolvedVariable]) -> set[tuple[str, str]]:
    """The ``${service.Output}`` references of a service's environment variables."""
    return {(p.service, p.output) for v in resolved.values() for p in v.parts
            if isinstance(p, OutputRef)}


@dataclass
class _PlanChecksums:
    checksums: dict[ActionKey, str] = field(default_factory=dict)
    manifests: dict[ActionKey, Mapping[str, Any]] = field(default_factory=dict)
    unfolded: dict[ActionKey, Checksum] = field(default_factory=dict)
    consumed: dict[ActionKey, frozenset[tuple[str, str]]] = field(default_factory=dict)
    consumes: dict[str, set[str]] = field(default_factory=dict)  # service -> deps it reads
    variables: dict[ActionKey, Mapping[str, ResolvedVariable]] = field(default_factory=dict)
    resolver: VariableResolver | None = None


def _plan_checksums(project: Project, env: Environment, records: Mapping[ActionKey, Record],
                    chosen: Collection[str], dependencies: Mapping[str, list[str]],
                    regions: Collection[str] | None) -> _PlanChecksums:
    """Every planned (service, region)'s checksum: files, inputs, variables, then the hashes of
    the dependency outputs it consumes (from the records; the record of a deploy gets the
    outputs it really used, see :meth:`Prepared.final_checksum`)."""
    from mila.checksums import deploy_checksum, workspace_checksums

    graph, environment = project.graph, env.name
    base = workspace_checksums(project, sorted(chosen))
    out = _PlanChecksums(resolver=VariableResolver(project))
    assert out.resolver is not None
    out.resolver.prefetch([(s, service_regions(s, env)) for s in graph.services
                           if s.name in chosen], environment)
    for s in graph.services:
        from_parameters = {(d, o) for d, o in consumed_outputs(s.parameters)}
        out.consumes[s.name] = set()
        for region in service_regions(s, env):
            key = (s.name, region)
            if regions is not None and region not in regions:
                continue
            if s.name not in chosen:
                out.checksums[key] = ""  # not planned; never compared
                continue
            # a missing ${ssm:}/${secret:} refuses the plan here, before any lock or write
            resolved = out.variables[key] = out.resolver.resolve(
                s.name, s.path, environment, region,
                dependencies=set(graph.dependencies(s.name, transitive=True)))
            out.unfolded[key] = deploy_checksum(
                project, base[s.name], s, environment, region,
                {**variable_digests(resolved), **parameter_digests(s, resolved)})
            uses = frozenset((d, o) for d, o in from_parameters | _variable_outputs(resolved)
                             if d in dependencies[s.name])
            out.consumed[key] = uses
            out.consumes[s.name].update(d for d, _ in uses)
            known = {d: records[(d, region)].outputs for d, _ in uses if (d, region) in records}
            c = with_consumed_outputs(out.unfolded[key], consumed_output_hashes(uses, known))
            out.checksums[key], out.manifests[key] = c.checksum, c.manifest
    return out


def prepare_removal(project: Project, environment: str, *, only: Collection[str] | None = None,
                    regions: Collection[str] | None = None, force: bool = False) -> Prepared:
    """Destroy every recorded service (or ``only``, in ``regions``). Refuses (exit 2) to remove
    a service whose outputs deployed services still consume, unless ``force``."""
    state = project.state
    env = state.get_environment(environment)
    records = {(r.service, r.region): r for r in state.records(environment)}
    if only is not None:
        check_deployed(project.graph, only, {k[0] for k in records}, environment)
    plan = annotate(plan_removal(env, list(records.values()), only=only, regions=regions),
                    records, {}, lambda service, region: None)
    validate_plan(project, plan, env, records)
    if not force:
        check_consumers(project, plan, records)
    check_policies(project, plan)
    return Prepared(plan, env, records, {}, state_fingerprint(records),
                    {"services": sorted(only) if only is not None else None, "remove": True,
                     "regions": sorted(regions) if regions is not None else None,
                     "force": force})


def stale_consumers(prepared: Prepared, results: Mapping[Any, Any]) -> list[str]:
    """Unchanged services of the plan that read an output this run changed (``results``:
    each action's :class:`DeployResult`): the next plan redeploys them (their checksum holds
    the hash of what they consumed), and the user is told now."""
    lines = []
    for a in prepared.plan.actions:
        if a.kind is not ActionKind.NO_CHANGES:
            continue
        for dep, name in sorted(prepared.consumed.get(a.key, ())):
            result, record = results.get((dep, a.region)), prepared.records.get((dep, a.region))
            outputs = getattr(result, "outputs", None)
            if outputs is not None and record is not None \
                    and record.outputs.get(name) != outputs.get(name):
                lines.append(f"{a.service} in {a.region} reads {dep}.{name}, which this run "
                             "changed: the next `mila deploy` updates it")
    return lines


def check_policies(project: Project, plan: Plan) -> None:
    """``mila_plan_ready``: any plugin may veto the plan; each reason names its plugin."""
    reasons: list[str] = []
    for plugin_name, result in project.pm.call_each("mila_plan_ready", plan=plan,
                                                    project=project):
        for reason in cast("Sequence[str] | None", result) or []:
            reasons.append(f"plugin '{plugin_name}': {reason}")
    if reasons:
        raise MilaError("the plan was refused:\n  " + "\n  ".join(reasons))


# ----------------------------------------------------------------------------- plan files


def plan_to_json(prepared: Prepared) -> dict[str, Any]:
    """The ``--json`` contract, plus what ``mila apply`` needs to check the plan is current."""
    plan = prepared.plan
    return {
        "environment": plan.environment,
        "actions": [{"service": a.service, "region": a.region, "action": a.kind.value,
                     "checksum": a.checksum, "previous_checksum": a.previous_checksum,
                     "reasons": list(a.reasons),
                     **({"diff": prepared.diffs[a.key].to_json()} if a.key in prepared.diffs
                        else {}),
                     # for `mila apply --worker`: what the code alone gives, and the record's
                     # version the plan saw (a later version was written by someone)
                     "inputs_checksum": prepared.inputs_checksum(a),
                     "record_version": getattr(prepared.records.get(a.key), "version", 0)}
                    for a in plan.actions],
        "warnings": [w.to_json() for w in prepared.warnings],
        "version": PLAN_FILE_VERSION,
        "state_fingerprint": prepared.state_fingerprint,
        "options": prepared.options,
        "created_at": plan.created_at.isoformat() if plan.created_at else None,
    }


def load_plan_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise MilaError(f"cannot read plan file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise MilaError(f"{path} is not a mila plan file: {exc}",
                        hint="write one with `mila deploy -e ENV --plan-out FILE`") from None
    if not isinstance(data, dict) or data.get("version") != PLAN_FILE_VERSION \
            or "environment" not in data or "actions" not in data:
        raise MilaError(f"{path} is not a mila plan file (version {PLAN_FILE_VERSION})",
                        hint="write one with `mila deploy -e ENV --plan-out FILE`")
    return data


def replan(project: Project, saved: Mapping[str, Any]) -> Prepared:
    """Plan again, now, with the options a saved plan was made with."""
    opts = saved.get("options") or {}
    if opts.get("remove"):
        return prepare_removal(project, saved["environment"], only=opts.get("services"),
                               regions=opts.get("regions"), force=bool(opts.get("force")))
    return prepare(project, saved["environment"], only=opts.get("services"),
                   force=bool(opts.get("force")), regions=opts.get("regions"))


def check_saved_plan(project: Project, saved: dict[str, Any]) -> Prepared:
    """Re-plan with the saved options; refuse (exit 2) unless code and state are unchanged."""
    current = replan(project, saved)
    now = plan_to_json(current)
    # reasons and diffs explain the plan; they are not part of what must match (nor the
    # worker fields)
    extra = ("reasons", "diff", "inputs_checksum", "record_version")
    now["actions"] = [{k: v for k, v in a.items() if k not in extra} for a in now["actions"]]
    saved = {**saved, "actions": [{k: v for k, v in a.items() if k not in extra}
                                  for a in saved["actions"]]}
    if now["state_fingerprint"] != saved.get("state_fingerprint"):
        raise PlanStale("the state changed since this plan was made (another deploy ran?)",
                        hint="make a new plan with `mila deploy --plan-out`")
    if now["actions"] != saved["actions"]:
        changed = sorted({(a["service"], a["region"]) for a in now["actions"]}
                         ^ {(a["service"], a["region"]) for a in saved["actions"]}
                         | {(a["service"], a["region"]) for a, b in
                            zip(now["actions"], saved["actions"], strict=False) if a != b})
        where = ", ".join(f"{s}/{r}" for s, r in changed[:5])
        raise PlanStale(f"the code changed since this plan was made ({where})",
                        hint="make a new plan with `mila deploy --plan-out`")
    return current


# ----------------------------------------------------------------------------- running


@dataclass
class RunOptions:
    concurrency: int
    lock_timeout: timedelta = DEFAULT_TIMEOUT
    lock_ttl: timedelta = DEFAULT_TTL  # the lease, ``[state] lock_lease_seconds``
    disable_rollback: bool = False
    lock_poll_seconds: float = 2.0


class Reporter(Protocol):
    """What the UI receives; the CLI passes a :class:`mila.progress.ProgressView`."""

    def started(self, key: ActionKey) -> None: ...
    def phase(self, key: ActionKey, phase: str, message: str = "") -> None: ...
    def waiting_for_lock(self, key: ActionKey, holder: Any) -> None: ...
    def finished(self, key: ActionKey, status: Status, message: str = "") -> None: ...


class SilentReporter:
    """Reports nothing (library use, benchmarks)."""

    def started(self, key: ActionKey) -> None:
        pass

    def phase(self, key: ActionKey, phase: str, message: str = "") -> None:
        pass

    def waiting_for_lock(self, key: ActionKey, holder: Any) -> None:
        pass

    def finished(self, key: ActionKey, status: Status, message: str = "") -> None:
        pass


def log_path(project: Project, action: Action) -> Path:
    return project.config.mila_dir / "logs" / action.environment / f"{action.service}.{action.region}.log"


def current_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def execute(project: Project, prepared: Prepared, options: RunOptions,
            reporter: Reporter | None = None, cancel: threading.Event | None = None,
            worker: WorkerPlan | None = None) -> RunReport:
    """Carry out every changing action of the plan (see :mod:`mila.runner`); returns the
    orchestrator's report. With ``worker``, as one of many workers sharing a saved plan
    (see :mod:`mila.workers`)."""
    from mila.runner import run_actions

    if worker is not None:
        from mila.workers import Worker

        return Worker(project, prepared, worker, options, reporter or SilentReporter(),
                      cancel or threading.Event()).run()
    report: RunReport = run_actions(project, prepared, options, reporter or SilentReporter(),
                                    cancel)
    return report


def check_plan_for_worker(project: Project, saved: dict[str, Any]) -> tuple[Prepared, WorkerPlan]:
    """Re-plan with the saved options against the state as it is now (other workers may have
    done part of it) and refuse (exit 2) if the code changed since the plan was made."""
    from mila.workers import worker_plan

    current = replan(project, saved)
    return current, worker_plan(saved, current)


def build_before_lock(project: Project, ws: Workspace, logfile: Any,
                       report: Callable[[str, str], None], cancel: threading.Event) -> None:
    """The build phase of one action: before the lock, so a failure writes no state."""
    from mila.build import build_service

    try:
        build_service(project, ws, report=report, log=logfile, cancel=cancel)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, MilaError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, DeployError) and exc.details:
            logfile.write(exc.details.rstrip() + "\n")
        logfile.write(f"# build failed: {message}\n")
        logfile.flush()
        raise


def tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []

