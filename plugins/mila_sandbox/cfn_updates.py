"""Updates of resources moto cannot update in place: replaced, as AWS replaces them.

**AWS**: an update changes a resource in place, or replaces it (creates the new one, points
every reference at it, deletes the old one); either way the stack ends ``UPDATE_COMPLETE`` and
``Ref``/``GetAtt`` resolve to the live resource. A Lambda function's inline code
(``Code.ZipFile``) can be changed like any other property.

**plain moto**: for types without an update handler (DynamoDB tables, API Gateway resources,
Lambda permissions and versions, log groups, KMS keys, …) the resource silently becomes
``None`` in the stack, and the next ``DescribeStacks`` fails with HTTP 500 while evaluating an
output that refers to it. Updating a function's inline ``ZipFile`` fails with HTTP 500 (the
plain-text code is taken for base64 zip content).

**here**: a changed resource of such a type is replaced — the old one deleted, the new one
created from the new properties (``UPDATE_IN_PROGRESS``, ``DELETE_*``, ``CREATE_*``,
``UPDATE_COMPLETE`` events); an unchanged one is kept. Inline code is zipped as on create.
The one visible difference from AWS: a replaced resource loses its data (a table's items).
A resource with a ``Condition`` is created, kept or deleted as its condition now says (plain
moto updates a resource whose condition is false, and fails on what it never created).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from mila_sandbox.cfn_events import current_stack


def _has_update_handler(resource_class: Any) -> bool:
    return not hasattr(resource_class.update_from_cloudformation_json, "__isabstractmethod__")


def install() -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.cloudformation import parsing

    original_update = parsing.parse_and_update_resource

    def parse_and_update_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str, region_name: str) -> Any:
        condition = resource_json.get("Condition")
        old = resources_map._parsed_resources.get(logical_id)
        exists = old is not None and not isinstance(old, (str, int, float, list, dict))
        if condition and not resources_map.lazy_condition_map[condition]:
            if exists:  # its condition turned false: the resource goes
                resources_map._delete_resource(old, resource_json)
            resources_map._parsed_resources.pop(logical_id, None)
            return None
        if not exists:  # its condition turned true (it was never created): create it
            return parsing.parse_and_create_resource(logical_id, resource_json, resources_map,
                                                     account_id, region_name)
        resource_class = parsing.resource_class_from_type(resource_json["Type"])
        if resource_class is None or _has_update_handler(resource_class):
            return original_update(logical_id, resource_json, resources_map, account_id,
                                   region_name)
        old_type = getattr(old, "cf_resource_type", resource_json["Type"])
        stack = current_stack()
        old_json = ((stack.template_dict.get("Resources") or {}).get(logical_id)
                    if stack is not None and stack.template_dict else None) or {"Type": old_type}
        resources_map._delete_resource(old, old_json)
        resources_map._parsed_resources.pop(logical_id, None)
        return parsing.parse_and_create_resource(logical_id, resource_json, resources_map,
                                                 account_id, region_name)

    parsing.parse_and_update_resource = parse_and_update_resource

    original_lambda_update = LambdaFunction.update_from_cloudformation_json.__func__

    def update_from_cloudformation_json(cls: Any, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> Any:
        code = (cloudformation_json.get("Properties") or {}).get("Code") or {}
        if isinstance(code.get("ZipFile"), str):
            cloudformation_json = copy.deepcopy(cloudformation_json)
            properties = cloudformation_json["Properties"]
            properties["Code"]["ZipFile"] = base64.b64encode(
                cls._create_zipfile_from_plaintext_code(code["ZipFile"]))
        return original_lambda_update(cls, original_resource, new_resource_name,
                                      cloudformation_json, account_id, region_name)

    LambdaFunction.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)
