"""Racily clean index entries: the tracked files whose "clean" from ``git status`` is not proof.

git (built without ``USE_NSEC``, the default) compares an index entry's recorded ctime and mtime
with the file's in whole seconds, and its own racy-git rule only looks at the mtime. So when an
entry was recorded (``git add``, or a ``git status`` refreshing it) in the same second as the
file's last change — a ``chmod`` — a same-size rewrite in that second that restores the mtime
(``cp -p``, ``touch -r``, ``os.utime``) keeps the entry "clean" forever. With
``core.trustctime=false`` or ``core.checkStat=minimal`` git ignores the ctime, and such a rewrite
is missed in any second. The ``git`` hasher reads the *suspects* this module names from disk.

**The rule.** ``T0`` is the wall clock taken just before this run starts ``git status``, less
:data:`~mila.racy.RACY_SECONDS` (coarse kernel timestamps lag the clock, network file
systems have their own). A state file under the cache folder keeps the horizon ``H`` (``T0`` of
the last run that completed the check), the identity of the index file that run read, and its
*pending* entries (path, recorded ctime second, object id). An entry is *settled* when it can no
longer hide a change: a change at any time ``t`` gives the file a ctime of ``t``'s second, so an
entry recorded with ctime second ``c`` hides a change only if the change happened within second
``c`` after the stat git recorded. Hence:

* an entry whose stat was taken in a later second than ``c`` is settled: git records a refreshed
  entry only after comparing the content, and any later change has a later ctime second;
* an entry verified by reading the file, at a time after second ``c`` ended, against its object
  id is settled: a later change has a later ctime second;
* every entry of the index a run read, except its pending ones, is settled when the run ends:
  each entry with ``c >= second(H)`` (its stat may have been in second ``c``) or pending before
  is read from disk and checked; an entry with ``c < second(H)`` and not pending was either in
  the index the last run read (settled then, by induction) or recorded by a stat taken after
  ``H`` (git's or this run's ``git status``, started after ``T0``), in a later second than ``c``.
  An entry stays pending while ``c >= second(T0)`` (a change may still come in its second) or
  its file differs from its object id (a stale entry; attribute-converted files stay here too);
* an unchanged index file (same path, size, mtime, ctime, inode) holds the same entries: only
  the stored pending ones are suspects and the index is not parsed — the warm path costs one
  ``stat`` and a small JSON read. A changed index is parsed (v2, v3, v4, SHA-1 and SHA-256).

What is left: an entry whose stat was taken before ``H`` but written into the index after that
run read it (a git command running alongside mila, or an old index file copied back) is trusted
like the others; git itself has the same window between its stat and its index write.

Without a state (first run, no cache folder, a corrupt or unreadable state) ``H`` is 0: every
entry is a suspect once. With ``core.trustctime=false`` or ``core.checkStat=minimal`` every entry
is a suspect on every run. An index this module cannot read (split index, sparse index, an
unknown version, a parse error) makes every tracked file a suspect. Suspects are read through
the digest cache (:class:`~mila_git.blobs.DigestCache`), so a suspect unchanged since it was
cached costs a ``stat`` and a lookup. Entries git never compares (``assume-unchanged``,
``skip-worktree``), unmerged stages and submodules are never suspects.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from mila import racy
from mila_git.blobs import EXECUTABLE

STATE_FILE = "git-index-horizon.json"
STATE_FORMAT = 1
_FLAGS = struct.Struct(">H")
_ASSUME_VALID = 0x8000
_EXTENDED = 0x4000
_STAGE = 0x3000
_NAME_MASK = 0x0FFF
_SKIP_WORKTREE = 0x4000  # in the extended flags
_GITLINK = 0o160000
_DIRECTORY = 0o040000
_UNSUPPORTED_EXTENSIONS = (b"link", b"sdir")  # split index, sparse index

Pending = dict[str, tuple[int, str]]  # path → (recorded ctime second, object id)


class _State(NamedTuple):
    horizon: int  # ns
    identity: list[object]  # path, size, mtime_ns, ctime_ns, inode of the index file read
    pending: Pending


class UnsupportedIndex(Exception):
    """An index file this module does not read: every tracked file is then a suspect."""


def read_index(data: bytes, hash_size: int, prefix: str, since: int,
               also: frozenset[int] = frozenset()) -> Pending:
    """The entries of an index file (``data``) under ``prefix`` whose recorded ctime second is at
    least ``since`` or in ``also``: ``{path: (ctime second, object id)}``, leaving out entries git
    never compares and unmerged stages. Raises :class:`UnsupportedIndex`.

    Only the entries asked for get their path decoded; the walk over the others reads two
    integers each (v2 and v3: the name's length is in the flags; v4 must decode every path).
    """
    if len(data) < 12 + hash_size or data[:4] != b"DIRC":
        raise UnsupportedIndex("not an index file")
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3, 4):
        raise UnsupportedIndex(f"index version {version}")
    try:
        found, end = _entries(data, version, count, hash_size, prefix.encode("utf-8",
                              "surrogateescape"), since, also)
    except (struct.error, ValueError, IndexError) as exc:
        raise UnsupportedIndex(f"cannot parse the index: {exc}") from None
    _check_extensions(data, end, hash_size)
    return found


def _entries(data: bytes, version: int, count: int, hash_size: int, prefix: bytes, since: int,
             also: frozenset[int]) -> tuple[Pending, int]:
    found: Pending = {}
    flags_at = 40 + hash_size
    # ctime seconds (the entry's first field), mode (at 24) and flags (after the object id)
    unpack_entry = struct.Struct(f">I20xI{flags_at - 28}xH").unpack_from
    unpack_flags = _FLAGS.unpack_from
    pos = 12
    previous = b""
    for _ in range(count):
        ctime, mode, flags = unpack_entry(data, pos)
        name_at = pos + flags_at + 2
        extended = 0
        if flags & _EXTENDED and version >= 3:
            extended = unpack_flags(data, name_at)[0]
            name_at += 2
        if version == 4:  # the name: drop N bytes of the previous one, append a NUL-ended suffix
            strip, name_at = _varint(data, name_at)
            end = data.index(b"\0", name_at)
            if strip > len(previous):
                raise ValueError("bad prefix compression")
            path = previous[:len(previous) - strip] + data[name_at:end]
            previous = path
            next_pos = end + 1
        else:
            length = flags & _NAME_MASK
            if length == _NAME_MASK:  # 4095 bytes or more: up to the NUL
                length = data.index(b"\0", name_at) - name_at
            next_pos = pos + ((name_at - pos + length + 8) & ~7)
            path = b""
        if ctime >= since or ctime in also:
            if mode & 0o170000 == _DIRECTORY:
                raise UnsupportedIndex("sparse index directory entry")
            if not (flags & (_ASSUME_VALID | _STAGE) or extended & _SKIP_WORKTREE
                    or mode & 0o170000 == _GITLINK):
                path = path or data[name_at:name_at + length]
                if path.startswith(prefix):
                    name = path[len(prefix):].decode("utf-8", "surrogateescape")
                    found[name] = (ctime, data[pos + 40:pos + flags_at].hex())
        pos = next_pos
    return found, pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """git's offset varint (``varint.c``): each continuation adds one before shifting."""
    byte = data[pos]
    pos += 1
    value = byte & 0x7F
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    return value, pos


def _check_extensions(data: bytes, pos: int, hash_size: int) -> None:
    end = len(data) - hash_size
    while pos + 8 <= end:
        signature = data[pos:pos + 4]
        if signature in _UNSUPPORTED_EXTENSIONS:
            raise UnsupportedIndex(f"index extension {signature.decode()}")
        pos += 8 + struct.unpack_from(">I", data, pos + 4)[0]


def object_id(data: bytes, hash_size: int) -> str:
    """The git blob id of ``data`` in a SHA-1 (20) or SHA-256 (32) repository."""
    h = hashlib.sha1 if hash_size == 20 else hashlib.sha256
    return h(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class RacyCheck:
    """One run's check (see the module docstring): :meth:`suspects` after ``git status``, then
    :meth:`settle` once the suspects were read. Created just before ``git status`` starts."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.started = racy.horizon(time.time_ns())
        self.state_file = cache_dir / STATE_FILE if cache_dir else None
        self.candidates: Pending = {}
        self._old: _State | None = None
        self._index: list[object] | None = None  # the index file read, for the next run
        self._hash_size = 20

    def suspects(self, root: Path, index_file: Path, hash_size: int, prefix: str,
                 trust_ctime: bool, tracked: Mapping[str, str]) -> list[str]:
        """The tracked paths (relative to the project) to read from disk although git calls them
        clean. ``index_file``: ``git rev-parse --git-path index``; ``prefix``: the project folder
        relative to the top of the work tree; ``tracked``: the paths the index and status left."""
        self._hash_size = hash_size
        self._old = self._load() if trust_ctime else None
        try:
            with open(index_file, "rb") as f:
                st = os.fstat(f.fileno())
                self._index = [str(index_file), st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                               st.st_ino]
                if self._old is not None and self._old.identity == self._index:
                    self.candidates = dict(self._old.pending)
                    return [p for p in self.candidates if p in tracked]
                data = f.read()
        except OSError:  # no index file: nothing is tracked
            self._index = None
            return []
        since = self._old.horizon // 10**9 if self._old else 0
        old = self._old.pending if self._old else {}
        try:
            found = read_index(data, hash_size, prefix, since,
                               frozenset(c for c, _ in old.values()))
        except UnsupportedIndex:  # every tracked file on disk (a skip-worktree one may not be)
            self._index = None  # nothing to remember: everything is read again next time
            return [p for p in tracked if os.path.lexists(root / p)]
        self.candidates = {p: e for p, e in found.items() if e[0] >= since or old.get(p) == e}
        if not trust_ctime:
            self._index = None  # every entry, every time: no state
        return [p for p in self.candidates if p in tracked]

    def settle(self, root: Path, digests: Mapping[str, str], links: Mapping[str, str]) -> None:
        """Keep the candidates still pending (recent, or their file differs from their object id)
        and write the state, if there is a place for it and it changed."""
        if self.state_file is None or self._index is None:
            return
        second = self.started // 10**9
        pending = {p: e for p, e in self.candidates.items()
                   if e[0] >= second or self._disk_id(root, p, digests, links) != e[1]}
        if self._old is not None and self._old.identity == self._index and \
                self._old.pending == pending:
            return  # the same answer next time: keep the file (and its older, safe, horizon)
        state = {"format": STATE_FORMAT, "horizon": self.started, "index": self._index,
                 "pending": {p: list(e) for p, e in pending.items()}}
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.state_file.with_name(
                f".{STATE_FILE}.{os.getpid()}.{threading.get_ident()}")
            temporary.write_text(json.dumps(state, separators=(",", ":")))
            os.replace(temporary, self.state_file)
        except OSError:  # a read-only checkout: every run checks as the first one did
            pass

    def _disk_id(self, root: Path, path: str, digests: Mapping[str, str],
                 links: Mapping[str, str]) -> str | None:
        """The object id of what was just read for ``path`` (``None``: not read)."""
        if path in links:
            return object_id(os.fsencode(links[path]), self._hash_size)
        digest = digests.get(path)
        if digest is None:
            return None
        if self._hash_size != 20:  # the digests are SHA-1 blob ids: read it again in SHA-256
            try:
                return object_id((root / path).read_bytes(), self._hash_size)
            except OSError:
                return None
        return digest.removeprefix(EXECUTABLE)

    def _load(self) -> _State | None:
        """The stored state, or ``None`` when missing, unreadable or not as this version writes."""
        if self.state_file is None:
            return None
        try:
            state = json.loads(self.state_file.read_bytes())
            if state["format"] != STATE_FORMAT:
                return None
            return _State(int(state["horizon"]), list(state["index"]),
                          {str(p): (int(c), str(o)) for p, (c, o) in state["pending"].items()})
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None
