"""``${ssm:…}`` and ``${secret:…}``: SSM Parameter Store parameters and Secrets Manager secrets.

At plan time mila needs a reference's version only: ``ssm:GetParameter`` without decryption
(a SecureString's value stays encrypted; mila never looks at it) and
``secretsmanager:DescribeSecret`` (no permission to read a secret's value is needed to plan).
Deploys pin that version in the CloudFormation dynamic reference, so CloudFormation sees a new
version as a change and the deploy uses exactly the version the plan checked.

Targets: ``${ssm:/path/name}``; ``${secret:name}`` (the whole ``SecretString``) or
``${secret:name:json-key}`` (one key of a JSON secret); ``name`` may be a secret's ARN.
"""

from __future__ import annotations

import json
from typing import Any

from mila.errors import MilaError
from mila.protocols import ReferenceInfo


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _client(service: str, region: str) -> Any:
    from mila_aws.session import client

    return client(service, region)


def _verify(region: str) -> None:
    """Before any write: never a real account when the sandbox is targeted."""
    from mila_aws.session import verify_target

    verify_target(region)


def _failed(kind: str, target: str, region: str, exc: Exception) -> MilaError:
    return MilaError(f"cannot look up {kind} '{target}' in {region}: {_code(exc) or exc}",
                     hint="check the AWS credentials and their permissions")


class SsmParameters:
    """``${ssm:/path}``: ``String`` and ``StringList`` parameters are resolved by
    CloudFormation (``{{resolve:ssm:/path:VERSION}}``); a ``SecureString``, which CloudFormation
    cannot resolve in a Lambda environment, is read at deploy time and passed as a ``NoEcho``
    parameter."""

    name = "ssm"

    def describe(self, target: str, region: str) -> ReferenceInfo | None:
        try:
            found = _client("ssm", region).get_parameter(Name=target, WithDecryption=False)
        except Exception as exc:
            if _code(exc) == "ParameterNotFound":
                return None
            raise _failed("SSM parameter", target, region, exc) from None
        parameter = found["Parameter"]
        version, kind = str(parameter["Version"]), str(parameter.get("Type", "String"))
        secure = kind == "SecureString"
        return ReferenceInfo(version=version, secure=secure, type=kind,
                             dynamic_reference=None if secure else
                             f"{{{{resolve:ssm:{target}:{version}}}}}")

    def value(self, target: str, region: str, version: str) -> str:
        try:
            found = _client("ssm", region).get_parameter(Name=f"{target}:{version}",
                                                         WithDecryption=True)
        except Exception as exc:
            raise _failed("SSM parameter", f"{target}:{version}", region, exc) from None
        return str(found["Parameter"]["Value"])

    def copy(self, target: str, source_region: str, target_region: str) -> bool:
        if self.describe(target, target_region) is not None:
            return False
        _verify(target_region)
        source = _client("ssm", source_region)
        found = source.get_parameter(Name=target, WithDecryption=True)["Parameter"]
        args: dict[str, Any] = {"Name": target, "Value": found["Value"], "Type": found["Type"]}
        described = source.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [target]}])
        meta = (described.get("Parameters") or [{}])[0]
        if meta.get("Description"):
            args["Description"] = meta["Description"]
        # a SecureString is encrypted with the target region's default key: a KMS key
        # belongs to one region (re-encrypt with your own key there if you need one)
        _client("ssm", target_region).put_parameter(**args)
        return True


def split_secret(target: str) -> tuple[str, str | None]:
    """``name`` or ``name:json-key``; an ARN keeps its own colons (7 fields)."""
    if target.startswith("arn:"):
        fields = target.split(":")
        return ":".join(fields[:7]), (":".join(fields[7:]) or None)
    name, _, key = target.partition(":")
    return name, key or None


class Secrets:
    """``${secret:name}`` / ``${secret:name:json-key}``: resolved by CloudFormation
    (``{{resolve:secretsmanager:name:SecretString:key::VERSION-ID}}``)."""

    name = "secret"

    def describe(self, target: str, region: str) -> ReferenceInfo | None:
        secret_id, key = split_secret(target)
        try:
            found = _client("secretsmanager", region).describe_secret(SecretId=secret_id)
        except Exception as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise _failed("secret", secret_id, region, exc) from None
        if found.get("DeletedDate"):
            return None  # scheduled for deletion: CloudFormation cannot read it
        current = [v for v, stages in (found.get("VersionIdsToStages") or {}).items()
                   if "AWSCURRENT" in stages]
        if not current:
            return None
        version = current[0]
        return ReferenceInfo(version=version, secure=True, type="secret",
                             dynamic_reference=f"{{{{resolve:secretsmanager:{secret_id}:"
                                               f"SecretString:{key or ''}::{version}}}}}")

    def value(self, target: str, region: str, version: str) -> str:
        secret_id, key = split_secret(target)
        try:
            found = _client("secretsmanager", region).get_secret_value(SecretId=secret_id,
                                                                       VersionId=version)
        except Exception as exc:
            raise _failed("secret", secret_id, region, exc) from None
        text = str(found.get("SecretString", ""))
        if key is None:
            return text
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict) or key not in document:
            raise MilaError(f"secret '{secret_id}' in {region} has no JSON key '{key}'",
                            hint="store the secret as a JSON object holding that key")
        value = document[key]
        return value if isinstance(value, str) else json.dumps(value)

    def copy(self, target: str, source_region: str, target_region: str) -> bool:
        secret_id, _ = split_secret(target)
        if self.describe(secret_id, target_region) is not None:
            return False
        _verify(target_region)
        source = _client("secretsmanager", source_region)
        meta = source.describe_secret(SecretId=secret_id)
        found = source.get_secret_value(SecretId=secret_id)
        args: dict[str, Any] = {"Name": meta["Name"]}
        if "SecretString" in found:
            args["SecretString"] = found["SecretString"]
        else:
            args["SecretBinary"] = found["SecretBinary"]
        if meta.get("Description"):
            args["Description"] = meta["Description"]
        _client("secretsmanager", target_region).create_secret(**args)
        return True
