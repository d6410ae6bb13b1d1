"""Hook implementations of the built-in ``aws`` plugin: the DynamoDB + S3 state backend, the
AWS identity, and the ``ssm`` and ``secret`` references of environment files
(:mod:`mila_aws.references`).

``[state] backend = "aws"`` (the default) accepts ``table`` and ``checksums`` (the bucket);
both default to ``<project>-mila-state`` / ``<project>-mila-checksums`` and live in
``[project].default_region``.

``mila_identity`` answers with ``sts:GetCallerIdentity`` through :func:`verify_target` (so a
sandbox run can never reach a real account). When no AWS credentials can be found it returns
``None`` — mila then shows "no AWS identity" and the ``local`` backend still works — unless
``[accounts]`` is configured or the state backend is ``aws``: then a missing identity is an
error, since nothing could be checked or written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mila import hookimpl
from mila.errors import StateError
from mila.protocols import ReferenceResolverType, StateBackendType

if TYPE_CHECKING:
    from mila.config import ProjectConfig
    from mila.model import Identity, Record
    from mila.protocols import ReferenceResolver, StateBackend


def create_state(config: ProjectConfig) -> StateBackend:
    from mila_aws.state import AwsState

    options = config.state.options
    return AwsState(table=str(options.get("table") or f"{config.name}-mila-state"),
                    bucket=str(options.get("checksums") or f"{config.name}-mila-checksums"),
                    region=config.default_region, project=config.name,
                    artifacts_bucket=config.artifacts_bucket)


@hookimpl
def mila_state_backends() -> Sequence[StateBackendType]:
    return [StateBackendType(name="aws", create=create_state,
                             config_keys=frozenset({"table", "checksums"}))]


def create_ssm(config: ProjectConfig) -> ReferenceResolver:
    from mila_aws.references import SsmParameters

    return SsmParameters()


def create_secrets(config: ProjectConfig) -> ReferenceResolver:
    from mila_aws.references import Secrets

    return Secrets()


@hookimpl
def mila_reference_resolvers() -> Sequence[ReferenceResolverType]:
    """``${ssm:/path}`` and ``${secret:name[:json-key]}`` in environment files."""
    return [ReferenceResolverType(name="ssm", create=create_ssm),
            ReferenceResolverType(name="secret", create=create_secrets)]


@hookimpl
def mila_environment_selected(config: ProjectConfig, environment: str) -> None:
    """``[environments.<name>].role_arn``: every AWS call of this environment assumes it."""
    settings = config.environments.get(environment)
    role = settings.role_arn if settings is not None else None
    from mila_aws.session import assume_role, current_role

    if role is not None or current_role() is not None:
        assume_role(role, session_name=f"mila-{config.name}-{environment}"[:64])


@hookimpl
def mila_identity(config: ProjectConfig) -> Identity | None:
    from mila_aws.session import verify_target

    try:
        return verify_target(config.default_region)
    except StateError:
        if config.accounts or config.state.backend == "aws":
            raise
        return None


@hookimpl
def mila_function_logs(record: Record, function: str, since_ms: int, follow: bool,
                       write: Callable[[str], None]) -> bool | None:
    """CloudWatch Logs of a function of a CloudFormation-based service."""
    from mila_aws.function_logs import print_events

    print_events(record, function, since_ms, follow, write)
    return True
