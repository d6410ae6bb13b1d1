"""Plan-time validation: every check that can refuse a plan, run before any lock or write.

:func:`validate_plan` checks each changing action of a plan:

* its deployer is installed (a ``destroy`` uses the deployer its record names);
* for a deploy, every parameter resolves: ``${service.Output}`` from the dependency's record in
  the same region, or :data:`~mila.parameters.KNOWN_AFTER_APPLY` when that dependency is
  deployed in the same plan (with ``known_outputs=False``, as ``mila validate`` runs without
  the state, every dependency counts as deployed in the plan);
* then the deployer's optional ``validate`` (:class:`~mila.protocols.ValidatingDeployer`),
  once per service for all the regions it is planned in: the template parses, template
  parameters without a default have values, cfn-lint for CloudFormation.

Errors refuse the plan with :class:`PlanInvalid` (exit 2), listing every error found (not
only the first); warnings are returned for the CLI to show with the plan.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mila.errors import MilaError
from mila.model import Action, ActionKind, Environment, Finding, Plan, Record, frozen_mapping
from mila.names import check_services
from mila.parameters import resolve_parameters
from mila.protocols import DeployContext, ValidatingDeployer

if TYPE_CHECKING:
    from mila.project import Project

ActionKey = tuple[str, str]
_DEPLOYS = (ActionKind.FIRST_DEPLOY, ActionKind.DEPLOY)


class PlanInvalid(MilaError):
    """The plan cannot be carried out as it is: templates, parameters or deployers (exit 2)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A finding about one service (``region`` ``None``: every region it is planned in)."""

    service: str
    region: str | None
    finding: Finding

    def __str__(self) -> str:
        where = f"{self.service}" + (f" in {self.region}" if self.region else "")
        return f"{where}: {self.finding}"

    def to_json(self) -> dict[str, object]:
        """The ``warnings`` entries of ``mila validate --json`` and of the JSON plan."""
        f = self.finding
        return {"service": self.service, "region": self.region, "severity": f.severity,
                "message": f.message, "file": f.file, "line": f.line, "rule": f.rule}


def validate_plan(project: Project, plan: Plan, environment: Environment,
                  records: Mapping[ActionKey, Record], *,
                  known_outputs: bool = True,
                  variables: Callable[[str, str], Mapping[str, Any]] | None = None,
                  ) -> list[Problem]:
    """Check every changing action of ``plan``; raise :class:`PlanInvalid` listing every error,
    else return the warnings. ``variables(service_path, environment)`` gives a service's
    environment-file variables (the plan's resolver, which read each file once already)."""
    if variables is None:
        from mila.variables import load_variables

        root = project.root

        def variables(service_path: str, env: str) -> Mapping[str, Any]:
            return load_variables(root, service_path, env)

    problems: list[Problem] = []
    installed = project.pm.registry.deployers
    by_service: dict[str, list[Action]] = {}
    for action in plan.actions:
        if not action.kind.changes:
            continue
        if action.deployer not in installed:
            what = "recorded for" if action.kind is ActionKind.DESTROY else "of"
            problems.append(Problem(action.service, action.region, Finding(
                f"deployer '{action.deployer}' {what} this service is not installed "
                f"(installed: {', '.join(sorted(installed)) or 'none'}); install the plugin "
                "that provides it (see `mila plugins`)", rule="deployer")))
        elif action.kind in _DEPLOYS:
            by_service.setdefault(action.service, []).append(action)
    deploying = deploying_by_region(plan)
    for _service, actions in sorted(by_service.items()):
        problems += _validate_service(project, plan, environment, records, actions,
                                      known_outputs, deploying, variables)
    errors = [p for p in problems if p.finding.severity == "error"]
    if errors:
        raise PlanInvalid(
            f"the plan is invalid ({len(errors)} error{'s' if len(errors) > 1 else ''}); "
            "nothing was locked or written:\n  " + "\n  ".join(str(p) for p in errors),
            hint="fix these and plan again")
    return [p for p in problems if p.finding.severity != "error"]


def deploying_by_region(plan: Plan) -> dict[str, set[str]]:
    """The services each region of ``plan`` deploys (one pass over the plan)."""
    found: dict[str, set[str]] = {}
    for a in plan.actions:
        if a.kind in _DEPLOYS:
            found.setdefault(a.region, set()).add(a.service)
    return found


def planned_outputs(project: Project, plan: Plan, records: Mapping[ActionKey, Record],
                    service: str, region: str, *, known_outputs: bool = True,
                    deploying: Mapping[str, set[str]] | None = None,
                    ) -> tuple[dict[str, Mapping[str, str]], set[str]]:
    """The outputs ``service`` can read in ``region`` at plan time, and the dependencies
    whose outputs are known only after apply (deployed in the same plan). Pass
    ``deploying`` (:func:`deploying_by_region`) when asking for many services: computing it
    is a pass over the whole plan."""
    if deploying is None:
        deploying = deploying_by_region(plan)
    in_region = deploying.get(region, set())
    outputs: dict[str, Mapping[str, str]] = {}
    pending: set[str] = set()
    for dep in project.graph.dependencies(service, transitive=True):
        record = records.get((dep, region))
        if dep in in_region or (not known_outputs and dep in project.graph.workspaces):
            pending.add(dep)
        elif record is not None:
            outputs[dep] = record.outputs
    return outputs, pending


def _validate_service(project: Project, plan: Plan, environment: Environment,
                      records: Mapping[ActionKey, Record], actions: Sequence[Action],
                      known_outputs: bool, deploying: Mapping[str, set[str]],
                      variables_of: Callable[[str, str], Mapping[str, Any]]) -> list[Problem]:
    ws = project.graph.workspaces.get(actions[0].service)
    if ws is None:
        return []
    from mila.variables import MILA_VARIABLES

    problems: list[Problem] = []
    resolved: dict[str, str] | None = None
    dependency_outputs: dict[str, Mapping[str, str]] = {}
    # ${env:NAME} of the service's environment files: their values (secrets maybe) are read
    # at deploy time only; the plan checked the files and references already
    names = [*variables_of(ws.path, environment.name), *MILA_VARIABLES]
    variables = {name: f"(variable {name})" for name in names}
    for action in actions:
        outputs, pending = planned_outputs(project, plan, records, ws.name, action.region,
                                           known_outputs=known_outputs, deploying=deploying)
        try:
            values = resolve_parameters(ws.parameters, service=ws.name,
                                        environment=environment.name, region=action.region,
                                        outputs=outputs, pending=pending, variables=variables)
        except MilaError as exc:
            problems.append(Problem(ws.name, action.region, Finding(
                exc.message + (f" ({exc.hint})" if exc.hint else ""), file=ws.config_file,
                rule="parameters")))
            continue
        if resolved is None:
            resolved, dependency_outputs = values, outputs
    deployer = project.deployer(actions[0].deployer)
    if resolved is None or not isinstance(deployer, ValidatingDeployer):
        return problems
    regions = tuple(a.region for a in actions)
    context = DeployContext(
        project=project.config.name, environment=replace(environment, regions=regions),
        region=regions[0], workspace=ws, root=project.root,
        parameters=frozen_mapping(resolved), dependency_outputs=frozen_mapping(dependency_outputs),
        log=io.StringIO())
    try:
        found = list(deployer.validate(actions[0], context))
    except MilaError as exc:
        found = [Finding(str(exc))]
    return problems + [Problem(ws.name, None, f) for f in found]


def validate_project(project: Project, environment: str, regions: Sequence[str],
                     only: Sequence[str] | None = None) -> tuple[Plan, list[Problem]]:
    """``mila validate``: every service (or ``only``) as if deployed for the first time to
    ``environment`` in ``regions`` (a service's own ``regions`` win), without the state or
    credentials: every dependency output is known after apply. Raises :class:`PlanInvalid`
    on errors; returns the plan that was checked and the warnings."""
    from mila.planner import plan_deployment, service_regions

    env = Environment(environment, tuple(regions))
    services = project.graph.services
    project.state_type()  # [state] is configuration too: checked, never reached
    check_services(project.graph, sorted(only or ()))
    checksums = {(s.name, r): "" for s in services for r in service_regions(s, env)}
    plan = plan_deployment(env, services, checksums, [], only=only)
    return plan, validate_plan(project, plan, env, {}, known_outputs=False)


def check_consumers(project: Project, plan: Plan, records: Mapping[ActionKey, Record]) -> None:
    """Refuse to destroy a service whose outputs deployed services still consume in the same
    region (through ``${service.Output}`` parameters), unless they are destroyed too."""
    from mila.parameters import consumed_outputs

    destroyed = {a.key for a in plan.actions if a.kind is ActionKind.DESTROY}
    users: dict[str, list[str]] = {}
    for ws in project.graph.services:
        used = {d for d, _ in consumed_outputs(ws.parameters)}
        for dep, region in sorted(destroyed):
            record = records.get((ws.name, region))
            if dep in used and record is not None and record.checksum is not None \
                    and (ws.name, region) not in destroyed:
                users.setdefault(dep, []).append(f"{ws.name} in {region}")
    if users:
        lines = [f"{dep} is consumed by {', '.join(who)}" for dep, who in sorted(users.items())]
        names = sorted({a.service for a in plan.actions} |
                       {w.split(" in ")[0] for who in users.values() for w in who})
        raise PlanInvalid("refusing to remove services whose outputs deployed services still "
                          "read:\n  " + "\n  ".join(lines),
                          hint=f"remove them too (-s {','.join(names)}), or pass --force to "
                               "remove anyway (their next deploy will fail until their "
                               "parameters change)")
