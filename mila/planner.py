"""State + checksums → :class:`~mila.model.Plan`. A pure function: no I/O, no plugins.

For each service (all, or those selected with ``-s``) and each of its regions (the service's
``regions`` override the environment's):

* no record, or a record that never succeeded (``checksum is None``) → ``first_deploy``;
* a record with the current checksum whose last action succeeded → ``no_changes``;
* otherwise → ``deploy``; ``force`` turns every ``no_changes`` into ``deploy``;
* ``detect_change`` (the ``mila_detect_change`` hook) may override ``deploy``/``no_changes``;
* a ``no_changes`` service that consumes outputs (``consumes``) of a service that is
  ``first_deploy`` in the same region becomes ``deploy``: those outputs are known after apply.

Every record whose service left the codebase, or whose region left the service's regions, is
``destroy`` — carried out with the deployer and stack name the record holds.

Edges: a deploy waits for the deploys of the services it depends on (transitively) in the same
region; a destroy waits only for its own dependents in that region — the actions (deploys or
destroys) of the services that depend on it now or did when deployed (their records'
``depends_on``) — so a failure skips only what depended on the failed action.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace

from mila.model import Action, ActionKind, Environment, Plan, Record, Status, Workspace, utcnow

ActionKey = tuple[str, str]
#: (service, region, current checksum, record or None) -> "deploy" | "no_changes" | None
ChangeDetector = Callable[[Workspace, str, str, "Record | None"], "str | None"]


def service_regions(service: Workspace, environment: Environment) -> tuple[str, ...]:
    """The regions a service is deployed to in an environment."""
    return tuple(service.regions) if service.regions else tuple(environment.regions)


def plan_deployment(
    environment: Environment,
    services: Sequence[Workspace],
    checksums: Mapping[ActionKey, str],
    records: Sequence[Record],
    *,
    dependencies: Mapping[str, Collection[str]] | None = None,
    only: Collection[str] | None = None,
    force: bool = False,
    detect_change: ChangeDetector | None = None,
    consumes: Mapping[str, Collection[str]] | None = None,
    scope: Collection[str] | None = None,
) -> Plan:
    """Compute the plan. ``checksums[(service, region)]`` is each service's current checksum;
    ``dependencies[service]`` its transitive service dependencies (default: ``depends_on``);
    ``consumes[service]`` the services whose outputs it reads through its parameters;
    ``only`` restricts every row (deploys and destroys) to those services; ``scope`` every
    row to those regions (a service's own ``regions`` included)."""
    deps = {s.name: set(dependencies[s.name]) if dependencies and s.name in dependencies
            else set(s.depends_on) for s in services}
    by_key = {(r.service, r.region): r for r in records if r.environment == environment.name}
    selected = set(only) if only is not None else None
    actions: list[Action] = []
    wanted: set[ActionKey] = set()

    for service in sorted(services, key=lambda s: s.name):
        regions = tuple(r for r in service_regions(service, environment)
                        if scope is None or r in scope)
        for region in regions:
            wanted.add((service.name, region))
        if selected is not None and service.name not in selected:
            continue
        for region in regions:
            current = checksums[(service.name, region)]
            record = by_key.get((service.name, region))
            kind, reason = _decide(service, region, current, record, force, detect_change)
            actions.append(Action(
                environment=environment.name, service=service.name, region=region, kind=kind,
                checksum=current, previous_checksum=record.checksum if record else None,
                deployer=service.deployer or (record.deployer if record else ""),
                stack_name=record.stack_name if record else None, reason=reason))

    actions = _outputs_known_after_apply(actions, consumes or {})
    service_names = {s.name for s in services}
    for (name, region), record in sorted(by_key.items()):
        if (name, region) in wanted or (selected is not None and name not in selected) \
                or (scope is not None and region not in scope):
            continue
        reason = "region left the environment" if name in service_names else \
            "service left the codebase"
        actions.append(Action(
            environment=environment.name, service=name, region=region, kind=ActionKind.DESTROY,
            checksum=None, previous_checksum=record.checksum, deployer=record.deployer,
            stack_name=record.stack_name, reason=reason))

    return Plan(environment=environment.name, regions=tuple(environment.regions),
                actions=tuple(actions), edges=_edges(actions, deps, by_key),
                created_at=utcnow())


def plan_removal(environment: Environment, records: Sequence[Record],
                 only: Collection[str] | None = None,
                 regions: Collection[str] | None = None) -> Plan:
    """Destroy every recorded service (or those in ``only``, in ``regions``)."""
    actions = [
        Action(environment=environment.name, service=r.service, region=r.region,
               kind=ActionKind.DESTROY, checksum=None, previous_checksum=r.checksum,
               deployer=r.deployer, stack_name=r.stack_name, reason="removal requested")
        for r in sorted(records, key=lambda r: (r.service, r.region))
        if r.environment == environment.name
        and (only is None or r.service in only) and (regions is None or r.region in regions)
    ]
    by_key = {(r.service, r.region): r for r in records}
    return Plan(environment=environment.name, regions=tuple(environment.regions),
                actions=tuple(actions), edges=_edges(actions, {}, by_key), created_at=utcnow())


def _decide(service: Workspace, region: str, current: str, record: Record | None, force: bool,
            detect_change: ChangeDetector | None) -> tuple[ActionKind, str]:
    if record is None or record.checksum is None:
        return ActionKind.FIRST_DEPLOY, "never deployed" if record is None else \
            "no successful deployment yet"
    if record.checksum == current and record.status is Status.SUCCEEDED:
        kind, reason = ActionKind.NO_CHANGES, "checksum unchanged"
    elif record.checksum == current:
        kind, reason = ActionKind.DEPLOY, f"last action {record.status.value}"
    else:
        kind, reason = ActionKind.DEPLOY, "checksum changed"
    if force and kind is ActionKind.NO_CHANGES:
        return ActionKind.DEPLOY, "forced"
    if detect_change is not None:
        override = detect_change(service, region, current, record)
        if override is not None:
            try:
                new = ActionKind(override)
            except ValueError:
                raise ValueError(f"mila_detect_change returned {override!r}; expected "
                                 "'deploy', 'no_changes' or None") from None
            if new not in (ActionKind.DEPLOY, ActionKind.NO_CHANGES):
                raise ValueError(f"mila_detect_change cannot return {override!r}")
            if new is not kind:
                return new, "decided by a plugin"
    return kind, reason


def _outputs_known_after_apply(actions: list[Action],
                               consumes: Mapping[str, Collection[str]]) -> list[Action]:
    first = {a.key for a in actions if a.kind is ActionKind.FIRST_DEPLOY}
    out = []
    for a in actions:
        new = sorted(d for d in consumes.get(a.service, ()) if (d, a.region) in first)
        if a.kind is ActionKind.NO_CHANGES and new:
            a = replace(a, kind=ActionKind.DEPLOY,
                        reason=f"outputs of {', '.join(new)} known after apply")
        out.append(a)
    return out


def _edges(actions: Sequence[Action], deps: Mapping[str, set[str]],
           records: Mapping[ActionKey, Record]) -> dict[ActionKey, tuple[ActionKey, ...]]:
    running = [a for a in actions if a.kind is not ActionKind.NO_CHANGES]
    deploys = {a.key for a in running if a.kind is not ActionKind.DESTROY}
    edges: dict[ActionKey, tuple[ActionKey, ...]] = {}
    for a in running:
        if a.kind is ActionKind.DESTROY:
            # its own dependents first: services that depend (or, per their records, depended)
            # on it in this region are destroyed or redeployed without it before it goes
            edges[a.key] = tuple(sorted(
                k for k in (b.key for b in running) if k[1] == a.region and k != a.key
                and a.service in _record_deps(records.get(k), deps, k[0])))
        else:
            edges[a.key] = tuple(sorted((d, a.region) for d in deps.get(a.service, ())
                                        if (d, a.region) in deploys))
    return edges


def _record_deps(record: Record | None, deps: Mapping[str, set[str]], service: str) -> set[str]:
    found = set(record.depends_on) if record is not None else set()
    return found | deps.get(service, set())
