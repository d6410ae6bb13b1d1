"""CloudFormation dynamic references resolve to the parameter's or secret's value.

**AWS**: a string anywhere in a resource's properties may hold ``{{resolve:ssm:name}}``,
``{{resolve:ssm:name:version}}``, ``{{resolve:ssm-secure:name[:version]}}`` or
``{{resolve:secretsmanager:secret-id:SecretString:json-key:version-stage:version-id}}`` (the
last four fields optional); CloudFormation replaces each with the value, read in the stack's
account and region, when it creates or updates the resource. The template itself keeps the
literal reference (``GetTemplate`` shows it). A reference that cannot be read fails the
resource.

**plain moto**: the literal ``{{resolve:…}}`` text reaches the resource (a Lambda function's
environment variable holds ``{{resolve:ssm:/p:1}}``, not the value).

**here**: moto's property cleaning (``parsing.clean_json``) replaces each reference in the
strings it returns with the value from moto's own SSM and Secrets Manager backends, in the
stack's account and region; a missing one fails the resource.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

_REFERENCE = re.compile(r"\{\{resolve:(ssm|ssm-secure|secretsmanager):([^}]*)\}\}")


class DynamicReferenceError(Exception):
    pass


def _ssm(account: str, region: str, spec: str) -> str:
    from moto.ssm.models import ssm_backends

    try:  # moto reads "name" (the latest version) and "name:version" as AWS does
        found = ssm_backends[account][region].get_parameter(spec)
    except Exception:  # a version that does not exist
        found = None
    if found is None:
        raise DynamicReferenceError(f"Parameters: [ssm:{spec}] cannot be found.")
    return str(found.value)


def _secret(account: str, region: str, spec: str) -> str:
    from moto.secretsmanager.models import secretsmanager_backends

    fields = spec.split(":")
    if spec.startswith("arn:"):
        fields = [":".join(fields[:7]), *fields[7:]]
    fields += [""] * (5 - len(fields))
    secret_id, _, key, stage, version = fields[:5]
    try:
        found = secretsmanager_backends[account][region].get_secret_value(
            secret_id, version or None, stage or (None if version else "AWSCURRENT"))
    except Exception as exc:
        raise DynamicReferenceError(f"Secrets Manager can't find the specified secret "
                                    f"'{secret_id}': {type(exc).__name__}") from None
    text = str(found.get("SecretString") or "")
    if not key:
        return text
    try:
        value = json.loads(text)[key]
    except (ValueError, KeyError, TypeError):
        raise DynamicReferenceError(f"Could not find SecretString key {key} in secret "
                                    f"'{secret_id}'") from None
    return value if isinstance(value, str) else json.dumps(value)


def resolve(text: str, account: str, region: str) -> str:
    """``text`` with every dynamic reference replaced by its value."""

    def value(match: re.Match[str]) -> str:
        kind, spec = match.group(1), match.group(2)
        if kind == "secretsmanager":
            return _secret(account, region, spec)
        return _ssm(account, region, spec)

    return _REFERENCE.sub(value, text)


def _resolved(value: Any, account: str, region: str) -> Any:
    if isinstance(value, str):
        return resolve(value, account, region) if "{{resolve:" in value else value
    if isinstance(value, dict):
        return {k: _resolved(v, account, region) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, account, region) for v in value]
    return value


def install() -> None:
    from moto.cloudformation import parsing

    original = parsing.clean_json
    depth = threading.local()

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        # moto's clean_json calls itself through the module: resolve once, at the outer call
        level = getattr(depth, "level", 0)
        depth.level = level + 1
        try:
            cleaned = original(resource_json, resources_map)
        finally:
            depth.level = level
        account = getattr(resources_map, "_account_id", None)
        region = getattr(resources_map, "_region_name", None)
        if level or account is None or region is None:
            return cleaned
        return _resolved(cleaned, account, region)

    parsing.clean_json = clean_json
