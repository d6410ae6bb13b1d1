"""A change set says, for each modified resource, which properties change and whether the
resource is replaced.

**AWS**: ``DescribeChangeSet`` gives each ``Modify`` change ``Replacement`` (``True``,
``False`` or ``Conditional``), ``Scope`` (``["Properties"]``…) and ``Details``: one entry per
changed property, ``{"Target": {"Attribute": "Properties", "Name": "BucketName",
"RequiresRecreation": "Always"}, "Evaluation": "Static", "ChangeSource": "DirectModification"}``.
A property the resource type lists as create-only (its registry schema's
``createOnlyProperties``) requires recreation.

**plain moto**: ``Action``, ``LogicalResourceId`` and ``ResourceType`` only.

**here**: the resource's properties in the stack's template and in the change set's are
compared at the top level; a changed property in the type's ``createOnlyProperties`` (from the
schemas cfn-lint ships, one read per type) makes ``Replacement: True`` and
``RequiresRecreation: Always``. A parameter whose value changes — given, or its ``Default``
in the new template (moto only compared given values) — modifies every resource that reaches
it (``Ref``, ``Fn::Sub``, conditions: :func:`mila_sandbox.cfn_parameter_updates.names_used`),
each top-level property reaching it detailed as AWS does (``ChangeSource:
ParameterReference``, ``CausingEntity`` the parameter).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=512)
def create_only(resource_type: str, region: str) -> frozenset[str]:
    """The create-only top-level properties of ``resource_type`` (empty when unknown)."""
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except Exception:  # no cfn-lint, or a type it does not know (custom resources)
        return frozenset()
    paths = schema.get("createOnlyProperties") or []
    return frozenset(p.split("/")[2] for p in paths if p.startswith("/properties/"))


def details(old: Any, new: Any, resource_type: str, region: str) -> tuple[str, list[dict[str, Any]]]:
    """``(Replacement, Details)`` for a resource whose properties go from ``old`` to ``new``."""
    old_props = (old or {}).get("Properties") or {} if isinstance(old, dict) else {}
    new_props = (new or {}).get("Properties") or {} if isinstance(new, dict) else {}
    changed = sorted(k for k in set(old_props) | set(new_props)
                     if old_props.get(k) != new_props.get(k))
    if not changed:
        return "Conditional", []
    recreate = create_only(resource_type, region)
    out = [{"Target": {"Attribute": "Properties", "Name": name,
                       "RequiresRecreation": "Always" if name in recreate else "Never"},
            "Evaluation": "Static", "ChangeSource": "DirectModification"} for name in changed]
    return ("True" if recreate & set(changed) else "False"), out


def changed_parameters(stack: Any, template: dict[str, Any], given: dict[str, Any] | None) -> set[str]:
    """Parameters whose effective value (given, else the new template's ``Default``) differs
    from the value the stack runs with."""
    old = dict(getattr(getattr(stack, "resource_map", None), "resolved_parameters", None) or {})
    slots = template.get("Parameters") or {}
    new = {name: (slot or {}).get("Default") for name, slot in slots.items()}
    new.update(given or {})
    return {name for name in new if name in old and str(new[name]) != str(old[name])}


def parameter_details(resource: Any, changed: set[str], conditions: dict[str, Any],
                      resource_type: str, region: str) -> tuple[str, list[dict[str, Any]]]:
    """``(Replacement, Details)`` for a resource modified only through parameter values."""
    from mila_sandbox.cfn_parameter_updates import names_used

    props = (resource or {}).get("Properties") or {} if isinstance(resource, dict) else {}
    recreate = create_only(resource_type, region)
    out, replaced = [], False
    for prop in sorted(props):
        for cause in sorted(names_used(props[prop], conditions) & changed):
            replaced |= prop in recreate
            out.append({"Target": {"Attribute": "Properties", "Name": prop,
                                   "RequiresRecreation": "Always" if prop in recreate else "Never"},
                        "Evaluation": "Static", "ChangeSource": "ParameterReference",
                        "CausingEntity": cause})
    return ("True" if replaced else "False" if out else "Conditional"), out


def install() -> None:
    from moto.cloudformation.models import Change, ChangeSet

    original = ChangeSet.diff

    def diff(self: Any) -> list[Any]:
        from mila_sandbox.cfn_parameter_updates import names_used

        changes = list(original(self))
        template = self.template_dict or {}
        old = (getattr(self.stack, "template_dict", None) or {}).get("Resources") or {}
        new = template.get("Resources") or {}
        conditions = template.get("Conditions") or {}
        region = self.stack.region_name
        changed = changed_parameters(self.stack, template, self.parameters) if old else set()
        listed = {c.logical_resource_id for c in changes}
        for name, resource in new.items():
            if name in old and name not in listed and names_used(resource, conditions) & changed:
                changes.append(Change("Modify", name, resource.get("Type", "")))
        for change in changes:
            if change.action != "Modify":
                continue
            name = change.logical_resource_id
            change.replacement, change.details = details(old.get(name), new.get(name),
                                                         change.resource_type, region)
            if not change.details and changed:
                change.replacement, change.details = parameter_details(
                    new.get(name), changed, conditions, change.resource_type, region)
            change.scope = ["Properties"]
        return changes

    ChangeSet.diff = diff
