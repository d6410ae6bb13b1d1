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
``RequiresRecreation: Always``. A resource changed only through a parameter value (same
text) is ``Replacement: Conditional`` with no details, as AWS says when it cannot tell
statically.
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


def install() -> None:
    from moto.cloudformation.models import ChangeSet

    original = ChangeSet.diff

    def diff(self: Any) -> list[Any]:
        changes = original(self)
        old = (getattr(self.stack, "template_dict", None) or {}).get("Resources") or {}
        new = (self.template_dict or {}).get("Resources") or {}
        region = self.stack.region_name
        for change in changes:
            if change.action != "Modify":
                continue
            name = change.logical_resource_id
            change.replacement, change.details = details(old.get(name), new.get(name),
                                                         change.resource_type, region)
            change.scope = ["Properties"]
        return list(changes)

    ChangeSet.diff = diff
