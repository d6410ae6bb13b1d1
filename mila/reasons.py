"""Why each action of a plan: the manifest stored with the last successful deploy against the
current one (:func:`mila.explain.explain`), plus what the planner itself decided on.

Reasons, most telling first: files added / modified / removed / renamed (the first few paths),
``dependency X changed``, ``parameter P changed``, ``output X.Y changed`` (a consumed output),
``deployer version changed``, ``input plugin:name changed``, ``forced``, ``last action failed``
(with its message), ``region R added``, ``never deployed``. Only actions whose checksum
changed read a manifest (one ``get_manifest`` each), so a plan with nothing to do reads none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from mila.explain import explain
from mila.model import Action, ActionKind, Plan, Record, Status

ActionKey = tuple[str, str]
#: How many paths of each kind of file change a reason list names.
FIRST_FEW = 5
ManifestReader = Callable[[str, str], "Mapping[str, Any] | None"]  # (service, region)
_PLANNER_DEFAULTS = {"checksum changed", "checksum unchanged"}


def annotate(plan: Plan, records: Mapping[ActionKey, Record],
             manifests: Mapping[ActionKey, Mapping[str, Any]],
             read_manifest: ManifestReader) -> Plan:
    """``plan`` with every action's ``reasons`` filled in."""
    recorded: dict[str, list[str]] = {}
    for service, region in sorted(records):
        if records[(service, region)].checksum is not None:
            recorded.setdefault(service, []).append(region)
    actions = tuple(replace(a, reasons=tuple(action_reasons(
        a, records.get(a.key), manifests.get(a.key), read_manifest, recorded.get(a.service, []))))
        for a in plan.actions)
    return replace(plan, actions=actions)


def action_reasons(action: Action, record: Record | None, current: Mapping[str, Any] | None,
                   read_manifest: ManifestReader, deployed_in: list[str]) -> list[str]:
    """The reasons of one action (see the module's docstring)."""
    kind = action.kind
    if kind is ActionKind.DESTROY or kind is ActionKind.NO_CHANGES:
        return [action.reason] if action.reason else []
    reasons: list[str] = []
    if kind is ActionKind.FIRST_DEPLOY:
        others = [r for r in deployed_in if r != action.region]
        if record is None or record.checksum is None:
            reasons.append(f"region {action.region} added (deployed in {', '.join(others)})"
                           if others else action.reason or "never deployed")
        if record is not None and record.status is Status.FAILED:
            reasons.append(_failed(record))
        return reasons
    if record is not None and record.checksum != action.checksum:
        old = read_manifest(action.service, action.region) if record.manifest_key else None
        if old is None:
            reasons.append("checksum changed (no stored manifest to compare with)")
        elif current is not None:
            reasons += explain(old, current, limit=FIRST_FEW)
    if action.reason and action.reason not in _PLANNER_DEFAULTS \
            and not action.reason.startswith("last action"):
        reasons.append(action.reason)  # forced, decided by a plugin, outputs known after apply
    if record is not None and record.status is not Status.SUCCEEDED:
        reasons.append(_failed(record))
    return reasons or [action.reason or "checksum changed"]


def _failed(record: Record) -> str:
    text = f"last action {record.status.value}"
    if record.message:
        first = record.message.splitlines()[0]
        text += f": {first[:120]}"
    return text


def short(reasons: tuple[str, ...], width: int = 48) -> str:
    """One cell of the plan table: the first reason, cut to ``width``, and how many more."""
    if not reasons:
        return ""
    first = reasons[0] if len(reasons[0]) <= width else reasons[0][:width - 1] + "…"
    return first + (f" (+{len(reasons) - 1})" if len(reasons) > 1 else "")
