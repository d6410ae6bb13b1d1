"""Hook implementations of the built-in ``local`` plugin: the SQLite state backend.

``[state] backend = "local"`` keeps the whole state in ``<root>/.mila/state.db``; it takes no
other ``[state]`` keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mila import hookimpl
from mila.protocols import StateBackendType

if TYPE_CHECKING:
    from mila.config import ProjectConfig
    from mila.protocols import StateBackend

STATE_FILE = "state.db"


def create_state(config: ProjectConfig) -> StateBackend:
    from mila_local.state import LocalState

    return LocalState(config.mila_dir / STATE_FILE)


@hookimpl
def mila_state_backends() -> Sequence[StateBackendType]:
    return [StateBackendType(name="local", create=create_state)]
