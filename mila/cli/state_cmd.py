"""``mila init``, ``mila envs``, ``mila history``, ``mila locks``, ``mila release-lock``."""

from __future__ import annotations

from mila.cli.main import cli
from mila.cli.stubs import not_implemented


@cli.command("init")
def init_command() -> None:
    """Create the remote state (not implemented yet)."""
    not_implemented("init")
