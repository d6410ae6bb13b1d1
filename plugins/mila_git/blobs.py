"""Git blob ids, file identities and the file digest cache shared by the ``git`` and ``fs`` hashers.

A file's digest is its *identity*: what packaging ships, so the two hashers agree and a change
to what ships changes the digest. For a regular file it is the git blob id of its working-tree
bytes (``sha1(b"blob <size>\\0" + content)``), prefixed ``100755:`` when it is executable (its
owner's execute bit, as git and the zip record it); a symlink's is described in
:mod:`mila_git.links`; a nested repository's is its checked-out commit.

The cache remembers the blob ids of files that had to be read (dirty, untracked or
attribute-converted ones for ``git``, all of them for ``fs``) under ``<root>/.mila/cache/``, keyed
by (relative path, size, mtime_ns, ctime_ns, inode). The ctime is set by the kernel on every
change of content or mode and cannot be set back (``cp -p``, ``rsync``, ``tar -x`` and
``touch -r`` restore the mtime, not the ctime), and an entry is only written for a file whose
last change is older than :data:`~mila.racy.RACY_SECONDS` before the run started (git's "racily clean"
rule): a change within the same timestamp tick as the entry could otherwise keep the key.
It is an optimisation only: a missing, corrupt or unwritable cache gives the same digests.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from mila import racy
from mila.errors import MilaError

CACHE_FORMAT = 2
CHUNK = 1 << 20
#: Digest prefixes for what is not a plain regular file (git's tree-entry modes)
EXECUTABLE = "100755:"
SYMLINK = "120000:"


class HashError(MilaError):
    """The tree holds something mila cannot give an identity to (a link leaving the project)."""


def identity(blob: str, executable: bool) -> str:
    """A regular file's digest: its blob id, marked when it is executable."""
    return EXECUTABLE + blob if executable else blob


def is_executable(st: os.stat_result) -> bool:
    """git's and the zip's rule: the owner's execute bit."""
    return bool(st.st_mode & stat.S_IXUSR)


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


def link_target(path: str | os.PathLike[str]) -> str:
    """A symlink's target path, as text (not UTF-8 bytes as surrogates, like file names)."""
    return os.fsdecode(os.readlink(path))


def nested_repository_commit(path: str | os.PathLike[str]) -> str | None:
    """The commit checked out in a submodule or nested repository (``None`` if it has none)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=path,
                             capture_output=True, text=True, check=False)
    except OSError:
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


Entry = tuple[int, int, int, int, str]  # size, mtime_ns, ctime_ns, inode, blob id


class DigestCache:
    """(relative path, size, mtime_ns, ctime_ns, inode) → blob id, persisted with diskcache.

    The whole table is one diskcache entry per hasher: one read and one write per run, instead of
    one SQLite round trip per file (measured: 30,000 per-file gets take 2 s, one pickled table
    30 ms). Entries not looked up during a run are dropped when it saves, so the table only holds
    the files the hasher reads (dirty and untracked ones for ``git``).
    """

    def __init__(self, directory: Path, namespace: str) -> None:
        self.directory = directory
        self.key = f"digests:{namespace}:{CACHE_FORMAT}"
        self._old: dict[str, Entry] | None = None
        self._new: dict[str, Entry] = {}
        self._changed = False
        self._started = time.time_ns()

    def _load(self) -> dict[str, Entry]:
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
        if entry is not None and entry[:4] == (st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                               st.st_ino):
            self._new[path] = entry
            return entry[4]
        return None

    def put(self, path: str, st: os.stat_result, digest: str) -> None:
        """Remember ``digest`` for the file as ``st`` (taken before it was read) saw it."""
        if max(st.st_mtime_ns, st.st_ctime_ns) > racy.horizon(self._started):
            return
        self._new[path] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, digest)
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
