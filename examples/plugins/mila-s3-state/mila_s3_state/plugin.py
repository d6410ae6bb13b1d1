"""Hook implementations: registers the ``s3`` state backend.

Chosen in ``mila.toml`` with::

    [state]
    backend = "s3"
    bucket = "shop-mila-state"     # optional; default "<project>-mila-state"

The bucket lives in ``[project].default_region``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mila import hookimpl
from mila.protocols import StateBackendType

if TYPE_CHECKING:
    from mila.config import ProjectConfig
    from mila.protocols import StateBackend


def create_state(config: ProjectConfig) -> StateBackend:
    from mila_s3_state.state import S3State  # boto3 only when the backend is used

    bucket = str(config.state.options.get("bucket") or f"{config.name}-mila-state")
    return S3State(bucket=bucket, region=config.default_region)


@hookimpl
def mila_state_backends() -> Sequence[StateBackendType]:
    return [StateBackendType(name="s3", create=create_state, config_keys=frozenset({"bucket"}))]
