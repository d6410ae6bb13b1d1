"""A parameter change reaches every resource that uses the parameter, however it is written.

**AWS**: an update re-evaluates every resource's properties with the new parameter values;
a resource whose resolved properties changed is updated, whether it uses the parameter
through ``Ref``, a ``Fn::Sub`` variable (``!Sub "app-${Stage}"``), ``Fn::FindInMap`` or a
condition (``Fn::If``, a resource's ``Condition``).

**plain moto**: only a literal ``{"Ref": parameter}`` marks a resource as changed; a
parameter used through ``!Sub`` (the common way) changes nothing and the update still ends
``UPDATE_COMPLETE``.

**here**: a resource is also updated when any parameter it reaches — through ``Ref``,
``Fn::Sub`` (its string and its variables), or the conditions it uses — has a new value.
Updating a resource whose resolved properties happen to be unchanged is harmless.
"""

from __future__ import annotations

import re
from typing import Any

_SUB_NAME = re.compile(r"\$\{(?!!)([^}.]+)(?:\.[^}]*)?\}")


def names_used(node: Any, conditions: dict[str, Any], seen: set[str] | None = None) -> set[str]:
    """Parameter and resource names ``node`` reaches (``Ref``, ``Fn::Sub``, conditions)."""
    seen = set() if seen is None else seen
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= names_used(item, conditions, seen)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) \
                    and len(value) == 2 else (value, {})
                if isinstance(text, str):
                    local = set(variables) if isinstance(variables, dict) else set()
                    found |= set(_SUB_NAME.findall(text)) - local
                found |= names_used(variables, conditions, seen)
            elif key in ("Condition", "Fn::If") and value:
                name = value if isinstance(value, str) else value[0]
                if isinstance(name, str) and name not in seen:
                    seen.add(name)
                    found |= names_used(conditions.get(name), conditions, seen)
                found |= names_used(value if isinstance(value, list) else [], conditions, seen)
            else:
                found |= names_used(value, conditions, seen)
    return found


def install() -> None:
    from moto.cloudformation.parsing import ResourceMap

    original = ResourceMap.build_resource_diff

    def build_resource_diff(self: Any, other_template: dict[str, Any],
                            parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        actions = original(self, other_template, parameters)
        if not parameters:
            return actions
        changed = {name for name in set(parameters) | set(self.input_parameters or {})
                   if (self.input_parameters or {}).get(name) != parameters.get(name)}
        if not changed:
            return actions
        conditions = other_template.get("Conditions") or {}
        for name, resource in (other_template.get("Resources") or {}).items():
            if name in self._resource_json_map and name not in actions["Modify"] \
                    and names_used(resource, conditions) & changed:
                actions["Modify"].append(name)
        return actions

    ResourceMap.build_resource_diff = build_resource_diff
