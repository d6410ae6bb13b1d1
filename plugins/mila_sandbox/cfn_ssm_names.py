"""``AWS::SSM::Parameter`` without ``Name``: CloudFormation generates one, as AWS does.

**AWS**: ``Name`` is optional; without it CloudFormation names the parameter itself (a
unique name built from the stack, the logical id and a random suffix), ``Ref`` returns that
name, and an update that changes the value keeps it.

**plain moto**: ``put_parameter`` is called with ``name=None``; the stack fails with a Python
error (HTTP 500).

**here**: the name moto generated for the resource is used when ``Name`` is missing, and kept
on update.
"""

from __future__ import annotations

import copy
from typing import Any


def _named(cloudformation_json: dict[str, Any], name: str) -> dict[str, Any]:
    properties = cloudformation_json.get("Properties") or {}
    if properties.get("Name"):
        return cloudformation_json
    named = copy.deepcopy(cloudformation_json)
    named.setdefault("Properties", {})["Name"] = name
    return named


def install() -> None:
    from moto.ssm.models import Parameter

    create = Parameter.create_from_cloudformation_json.__func__
    update = Parameter.update_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls: Any, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        return create(cls, resource_name, _named(cloudformation_json, resource_name),
                      account_id, region_name, **kwargs)

    def update_from_cloudformation_json(cls: Any, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> Any:
        return update(cls, original_resource, new_resource_name,
                      _named(cloudformation_json, original_resource.name), account_id,
                      region_name)

    Parameter.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    Parameter.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)
