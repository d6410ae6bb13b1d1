"""``mila checksums`` and ``mila affected``."""

from __future__ import annotations

from mila.cli.main import cli
from mila.cli.stubs import not_implemented


@cli.command("checksums")
def checksums_command() -> None:
    """Print each service's and package's checksum (not implemented yet)."""
    not_implemented("checksums")
