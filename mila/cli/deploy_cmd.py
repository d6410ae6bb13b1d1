"""``mila deploy``, ``mila apply``, ``mila remove``."""

from __future__ import annotations

from mila.cli.main import cli
from mila.cli.stubs import not_implemented


@cli.command("deploy")
def deploy_command() -> None:
    """Plan and deploy an environment (not implemented yet)."""
    not_implemented("deploy")
