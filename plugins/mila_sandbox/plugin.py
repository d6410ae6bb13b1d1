"""Hook implementations of the built-in ``sandbox`` plugin: the ``mila sandbox`` commands.

Importing this module imports click and the standard library only — never moto, which costs
well over half a second and is needed only when a sandbox actually starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mila import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def mila_commands() -> Sequence[click.Command]:
    from mila_sandbox.commands import sandbox

    return [sandbox]
