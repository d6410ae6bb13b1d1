"""Git blob ids and the file digest cache shared by the ``git`` and ``fs`` hashers.

Every digest mila keeps is a git object id, so the two hashers agree: a regular file's digest is
``sha1(b"blob <size>\\0" + content)``, a symlink's the blob id of its target path, a nested
repository's its checked-out commit. The cache remembers the digests of files that had to be read
(dirty or untracked ones for ``git``, all of them for ``fs``) under ``<root>/.mila/cache/``, keyed
by (relative path, size, mtime_ns, inode). It is an optimisation only: a missing, corrupt or
unwritable cache gives the same digests, just slower.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

#: Files modified this recently are not cached: on a coarse clock a second edit of the same size
#: within the same tick would keep the same (size, mtime) key and be served stale (git calls
#: these "racily clean" entries).
RACY_SECONDS = 2.0
CACHE_FORMAT = 1
CHUNK = 1 << 20


def blob_id(data: bytes) -> str:
    """The git blob id of ``data``."""
    h = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()


def file_blob_id(path: str | os.PathLike[str], size: int) -> str:
    """The git blob id of a regular file's content, read in chunks (``size`` from its stat)."""
    if size < CHUNK:
        # most source files: one os.read of one byte more than the size (a short read of a
        # regular file is its end), no buffered file object: 2.5x faster than open().read() on small files
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.read(fd, size + 1)
            if len(data) > size:  # it grew since its stat: read the rest
                parts = [data]
                while chunk := os.read(fd, CHUNK):
                    parts.append(chunk)
                data = b"".join(parts)
        finally:
            os.close(fd)
        return blob_id(data)
    with open(path, "rb") as f:
        h = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
        read = 0
        while chunk := f.read(CHUNK):
            h.update(chunk)
            read += len(chunk)
    if read != size:  # changed while we read it: hash what we actually read
        with open(path, "rb") as f:
            return blob_id(f.read())
    return h.hexdigest()


def symlink_blob_id(path: str | os.PathLike[str]) -> str:
    """A symlink is its target path string, exactly as git stores it."""
    return blob_id(os.fsencode(os.readlink(path)))


def nested_repository_commit(path: str | os.PathLike[str]) -> str | None:
    """The commit checked out in a submodule or nested repository (``None`` if it has none)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=path,
                             capture_output=True, text=True, check=False)
    except OSError:
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


class DigestCache:
    """(relative path, size, mtime_ns, inode) → digest, persisted with diskcache.

    The whole table is one diskcache entry per hasher: one read and one write per run, instead of
    one SQLite round trip per file (measured: 30,000 per-file gets take 2 s, one pickled table
    30 ms). Entries not looked up during a run are dropped when it saves, so the table only holds
    the files the hasher reads (dirty and untracked ones for ``git``).
    """

    def __init__(self, directory: Path, namespace: str) -> None:
        self.directory = directory
        self.key = f"digests:{namespace}:{CACHE_FORMAT}"
        self._old: dict[str, tuple[int, int, int, str]] | None = None
        self._new: dict[str, tuple[int, int, int, str]] = {}
        self._changed = False
        self._started = time.time_ns()

    def _load(self) -> dict[str, tuple[int, int, int, str]]:
        if self._old is None:
            self._old = {}
            try:
                with self._open() as cache:
                    value = cache.get(self.key)
                if isinstance(value, dict):
                    self._old = value
            except Exception:  # any cache failure means "no cache", never a wrong digest
                self._old = {}
        return self._old

    def _open(self) -> Any:
        import diskcache  # only when a file has to be read: a clean git tree never opens it

        return diskcache.Cache(str(self.directory))

    def get(self, path: str, st: os.stat_result) -> str | None:
        entry = self._load().get(path)
        if entry is not None and entry[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
            self._new[path] = entry
            return entry[3]
        return None

    def put(self, path: str, st: os.stat_result, digest: str) -> None:
        if st.st_mtime_ns > self._started - int(RACY_SECONDS * 1e9):
            return
        self._new[path] = (st.st_size, st.st_mtime_ns, st.st_ino, digest)
        self._changed = True

    def save(self) -> None:
        """Write the table if it changed (new entries, or entries that went away)."""
        if not self._changed and (self._old is None or len(self._new) == len(self._old)):
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._open() as cache:
                cache.set(self.key, self._new)
        except Exception:  # read-only checkout, full disk: the cache is optional
            pass
