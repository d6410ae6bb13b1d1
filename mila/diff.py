"""The resource-level diff of a plan: what each deploy would change, before anything runs.

For each ``first_deploy``/``deploy`` action whose deployer has ``describe_changes``
(:class:`~mila.protocols.ChangeDescriber`), the deployer is asked with the context a deploy
would get: parameters and variables resolved, dependency outputs from the records — those of a
dependency deployed in the same plan read :data:`~mila.parameters.KNOWN_AFTER_APPLY`. Nothing
is locked or recorded. A ``destroy`` deletes the whole stack; a deployer without
``describe_changes`` has no diff (said so); one that cannot tell says why.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mila.errors import MilaError
from mila.model import Action, ActionKind, ResourceChange, frozen_mapping
from mila.parameters import KNOWN_AFTER_APPLY, resolve_parameters
from mila.protocols import ChangeDescriber, DeployContext
from mila.validation import planned_outputs

if TYPE_CHECKING:
    from mila.deploy import Prepared
    from mila.project import Project

ActionKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ActionDiff:
    """The diff of one action: its resource changes, or ``None`` with a note saying why not."""

    changes: tuple[ResourceChange, ...] | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"changes": None if self.changes is None else [
            {"action": c.action, "logical_id": c.logical_id, "resource_type": c.resource_type,
             "replacement": c.replacement, "properties": list(c.properties)}
            for c in self.changes], "note": self.note or None}


class _AfterApply(Mapping[str, str]):
    """The outputs of a dependency deployed in the same plan: any name, not known yet."""

    def __getitem__(self, name: str) -> str:
        return KNOWN_AFTER_APPLY

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def describe_plan(project: Project, prepared: Prepared,
                  concurrency: int = 4) -> dict[ActionKey, ActionDiff]:
    """The diff of every changing action of ``prepared``'s plan (several asked at once)."""
    out: dict[ActionKey, ActionDiff] = {}
    asked: list[Action] = []
    for a in prepared.plan.actions:
        if a.kind is ActionKind.DESTROY:
            out[a.key] = ActionDiff(None, "the stack and all its resources are deleted")
        elif a.kind.changes:
            asked.append(a)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for a, diff in zip(asked, pool.map(lambda a: describe_action(project, prepared, a),
                                           asked), strict=True):
            out[a.key] = diff
    return out


def describe_action(project: Project, prepared: Prepared, action: Action) -> ActionDiff:
    from mila.build import workspace_packages
    from mila.variables import VariableResolver, context_variables

    deployer = project.deployer(action.deployer)
    ws = project.graph.workspaces.get(action.service)
    if not isinstance(deployer, ChangeDescriber) or ws is None:
        return ActionDiff(None, f"no resource diff: deployer '{action.deployer}' cannot "
                                "describe its changes before deploying")
    known, pending = planned_outputs(project, prepared.plan, prepared.records, ws.name,
                                     action.region)
    outputs: dict[str, Mapping[str, str]] = {**known, **{d: _AfterApply() for d in pending}}
    try:
        values, resolved = context_variables(
            prepared.resolver or VariableResolver(project), prepared.variables.get(action.key),
            ws, action.environment, action.region, outputs)
        params = resolve_parameters(ws.parameters, service=ws.name,
                                    environment=action.environment, region=action.region,
                                    outputs=outputs, variables=values)
        context = DeployContext(
            project=project.config.name, environment=prepared.environment,
            region=action.region, workspace=ws, root=project.root,
            parameters=frozen_mapping(params), dependency_outputs=frozen_mapping(outputs),
            variables=values, resolved_variables=frozen_mapping(resolved), log=io.StringIO(),
            packages=frozen_mapping(workspace_packages(project, ws)))
        return ActionDiff(tuple(deployer.describe_changes(action, context)))
    except MilaError as exc:
        return ActionDiff(None, f"cannot describe the changes: {exc.message}")
