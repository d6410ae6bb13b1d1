"""IAM capabilities are required as on AWS.

**AWS**: ``CreateStack``, ``UpdateStack`` and ``CreateChangeSet`` refuse a template that
creates IAM resources unless the caller acknowledges it: ``CAPABILITY_IAM`` for IAM resources,
``CAPABILITY_NAMED_IAM`` when they have custom names — otherwise
``InsufficientCapabilitiesException: Requires capabilities : [CAPABILITY_IAM]``. A template
using a transform needs ``CAPABILITY_AUTO_EXPAND`` when sent straight to ``CreateStack`` /
``UpdateStack`` (a change set is the review, so ``CreateChangeSet`` does not). The check
applies to the expanded template, so SAM's generated function roles need ``CAPABILITY_IAM``.

**plain moto**: capabilities are not checked, so a deployer that forgets them passes every
test and fails on its first real deploy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: IAM resource types, and the property that gives each a custom name
IAM_TYPES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::UserToGroupAddition": None,
    "AWS::IAM::ServiceLinkedRole": None,
}


def _error(message: str) -> Exception:
    from moto.cloudformation.exceptions import CloudFormationError

    class InsufficientCapabilitiesException(CloudFormationError):
        code = "InsufficientCapabilitiesException"

    return InsufficientCapabilitiesException(message)


def required_capabilities(template: dict[str, Any]) -> list[str]:
    """The IAM capability ``template`` (already expanded) needs, if any."""
    needed: list[str] = []
    for resource in (template.get("Resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("Type") not in IAM_TYPES:
            continue
        name_property = IAM_TYPES[resource["Type"]]
        if name_property and name_property in (resource.get("Properties") or {}):
            return ["CAPABILITY_NAMED_IAM"]
        needed = ["CAPABILITY_IAM"]
    return needed


def check(template: dict[str, Any], capabilities: Iterable[str], *,
          transformed: bool = False, change_set: bool = False) -> None:
    """Raise ``InsufficientCapabilitiesException`` as AWS would."""
    given = set(capabilities)
    if transformed and not change_set and "CAPABILITY_AUTO_EXPAND" not in given:
        raise _error("Requires capabilities : [CAPABILITY_AUTO_EXPAND]")
    needed = required_capabilities(template)
    if needed == ["CAPABILITY_IAM"] and given & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}:
        return
    if needed and needed[0] not in given:
        raise _error(f"Requires capabilities : [{needed[0]}]")


def install() -> None:
    """Nothing to patch: :mod:`mila_sandbox.cfn_lifecycle` calls :func:`check`."""
