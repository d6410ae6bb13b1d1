"""Parsed workspace files (``mila.toml``, ``pyproject.toml``, ``package.json``), cached.

``discover`` reads three small files per workspace on every command; at 2,000 workspaces,
parsing them is most of its time. :class:`ParsedFiles` keeps what each file parsed to in one
JSON document, ``.mila/cache/parsed-files.json``, keyed by the file's project-relative path and
(size, mtime_ns, ctime_ns, inode), the key of the file digest cache (``mila_git.blobs``): the
ctime is set by the kernel on every change and cannot be set back. An entry is written only
for a file whose last change (mtime or ctime) is older than :data:`~mila.racy.RACY_SECONDS` before the run
started (git's "racily clean" rule: a change in the same timestamp tick as the read could keep
the key), and only when the parsed value survives a JSON round trip unchanged (a TOML date is
parsed again each time). Entries not looked up during a run are dropped when it saves.

It is an optimisation only: a missing, corrupt, stale or unwritable cache gives the same
values, and a file that fails to parse is never cached (its error is raised on every run).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mila import racy
from mila.errors import ConfigError

CACHE_FILE = "parsed-files.json"
FORMAT = 1
#: A path that does not lead to a file: treated as "no such file", as ``Path.is_file`` does.
_ABSENT = {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EBADF}


def file_stat(path: str, shown: str) -> os.stat_result | None:
    """The stat of the regular file (symlinks followed) at ``path``; ``None`` when there is none."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno in _ABSENT:
            return None
        raise ConfigError(f"cannot read: {exc.strerror}", file=shown) from None
    return st if stat.S_ISREG(st.st_mode) else None


class ParsedFiles:
    """``(path, size, mtime_ns, ctime_ns, inode) → parsed value``, read once and saved once."""

    def __init__(self, directory: Path | None) -> None:
        self.file = directory / CACHE_FILE if directory is not None else None
        self._started = time.time_ns()
        self._old = self._read()
        self._new: dict[str, list[Any]] = {}
        self._changed = False

    def _read(self) -> dict[str, list[Any]]:
        if self.file is None:
            return {}
        try:
            with open(self.file, "rb") as f:
                doc = json.load(f)
        except (OSError, ValueError):  # none yet, or corrupt: no cache
            return {}
        files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == FORMAT \
            else None
        return files if isinstance(files, dict) else {}

    def parse(self, path: str, shown: str, st: os.stat_result,
              parse: Callable[[bytes], Any]) -> Any:
        """What ``parse`` makes of the bytes of ``path`` (whose stat, taken before reading, is
        ``st``), from the cache when the file is unchanged. ``shown`` names it in errors and
        keys it in the cache (project-relative). The value is the cache's own: read it, never
        change it (it is saved as it is)."""
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        entry = self._old.get(shown)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == key:
            self._new[shown] = entry
            return entry[1]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=shown) from None
        value = parse(data)
        if max(st.st_mtime_ns, st.st_ctime_ns) <= racy.horizon(self._started):
            try:
                kept = json.loads(json.dumps(value, allow_nan=False))
            except (TypeError, ValueError):  # a TOML date, a NaN: parsed again next time
                kept = None
            if kept is not None and kept == value:
                self._new[shown] = [key, kept]
                self._changed = True
        return value

    def save(self) -> None:
        """Write the table if it changed; any failure leaves the cache as it was (optional)."""
        if self.file is None or (not self._changed and len(self._new) == len(self._old)):
            return
        tmp = self.file.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"format": FORMAT, "files": self._new}), encoding="utf-8")
            os.replace(tmp, self.file)
        except OSError:  # read-only checkout, full disk
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
