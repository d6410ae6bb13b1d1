"""Everything mila shows on a terminal: tables, colours, live progress.

The only module (with the CLI) that writes to stdout. Colour follows ``NO_COLOR`` and whether
stdout is a terminal; without a terminal, output degrades to plain lines suitable for CI logs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def is_terminal(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def make_console(stderr: bool = False) -> Console:
    """A console bound to the *current* sys.stdout/stderr (click's test runner swaps them)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = is_terminal(stream)
    return Console(
        file=stream,
        no_color="NO_COLOR" in os.environ or not tty,
        force_terminal=tty,
        highlight=False,
        soft_wrap=not tty,
        width=None if tty else 200,
    )


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    t = Table(title=title, show_edge=False, header_style="bold", pad_edge=False, box=None)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*[c if isinstance(c, Text) else Text(str(c) if c is not None else "-")
                    for c in row])
    return t


def echo(*objects: Any, stderr: bool = False) -> None:
    make_console(stderr).print(*objects)
