"""Files only their owner can read: everything mila writes under ``.mila/`` (action logs, the
local state, the sandbox's pid file) may name accounts, outputs and endpoints.

Folders are created ``0700`` and files ``0600`` whatever the umask, and ``.mila/`` itself is
set back to ``0700`` whenever mila writes under it, so what another tool created there is not
readable by others either.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TextIO, cast

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dirs(path: Path, top: Path) -> Path:
    """Create ``path`` (under ``top``, e.g. ``.mila``) and its missing parents, each 0700;
    ``top`` is made 0700 even if it existed."""
    path, top = Path(path), Path(top)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is masked by the umask
    if top.is_dir():
        with contextlib.suppress(PermissionError):  # not ours: its files are still 0600
            os.chmod(top, PRIVATE_DIR)
    return path


def open_private(path: Path, append: bool = False) -> TextIO:
    """A UTF-8 text file open for writing, created (or truncated) with mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return cast(TextIO, os.fdopen(fd, "a" if append else "w", encoding="utf-8"))


def touch_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (before another library
    opens it with its own mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
