"""The ``mila`` entry points of the installed distributions, remembered between commands.

Finding them costs every command ~30 ms: importing ``importlib_metadata`` (and ``zipp``) and
reading the ``entry_points.txt`` of every installed distribution. :func:`find` keeps the
group's entry points (name, value, distribution folder) in the project's
``.mila/cache/entry-points.json`` under a *fingerprint* of everything that decides them:

* the interpreter (``sys.executable``, its version) and ``sys.path``, in order;
* for each folder on ``sys.path``, the names of its ``*.dist-info``/``*.egg-info``/``EGG-INFO``
  folders (installing or removing a distribution adds or removes one) and, for each, the
  (size, mtime, ctime, inode) of its ``entry_points.txt`` or its absence, so a reinstall or an
  edit in place is seen too (the ctime is set by the kernel on every change and cannot be set
  back); a file on ``sys.path`` (a zip) by its own (size, mtime, ctime, inode).

The fingerprint costs one ``listdir`` per ``sys.path`` folder and one ``stat`` per
distribution (~1 ms for 240). It is taken *before* the entry points are read (a distribution
that appears in between is read but not in the fingerprint: the next run misses), and the
cache is not written when an ``entry_points.txt`` it covers changed within :data:`~mila.racy.RACY_SECONDS`
of the run (git's "racily clean" rule: a change in the same timestamp tick could keep the
fingerprint). It is only used when importlib's path finder (or ``importlib_metadata``'s, the
same search) is the only distribution finder on ``sys.meta_path``. A missing, corrupt or
unwritable cache means reading the entry points as without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import json
import os
import re
import stat
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mila import racy

CACHE_FILE = "entry-points.json"
FORMAT = 1
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def metadata() -> Any:
    """``importlib_metadata`` (``.dist`` on entry points on every Python), else the stdlib's."""
    try:
        return importlib.import_module("importlib_metadata")
    except ImportError:  # pragma: no cover
        return importlib.import_module("importlib.metadata")


class Distribution:
    """A distribution known by its metadata folder (else its name), read only when asked
    (``mila plugins``, an error naming a plugin)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._dist: Any = None

    def _get(self) -> Any:
        if self._dist is None:
            md = metadata()
            self._dist = md.Distribution.at(self.where) if os.sep in self.where \
                else md.distribution(self.where)
        return self._dist

    @property
    def metadata(self) -> Any:
        return self._get().metadata

    @property
    def version(self) -> Any:
        return self._get().version


class CachedEntryPoint:
    """An entry point as the cache keeps it: ``name``, ``value`` (``module:attr``), ``dist``."""

    def __init__(self, name: str, value: str, dist: str | None) -> None:
        self.name, self.value = name, value
        self.dist = Distribution(dist) if dist else None

    def load(self) -> Any:
        """What the entry point names, as ``EntryPoint.load`` does."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"invalid entry point value {self.value!r}")
        obj = importlib.import_module(match["module"])
        for attr in (match["attr"] or "").split(".") if match["attr"] else ():
            obj = getattr(obj, attr)
        return obj


def find(group: str, cache_dir: Path | None) -> Iterable[Any]:
    """The entry points of ``group``: from the cache when nothing installed changed."""
    started = time.time_ns()
    seen = fingerprint() if cache_dir is not None else None
    if seen is None or cache_dir is None:
        return list(metadata().entry_points(group=group))
    key, newest = seen
    cached = _read(cache_dir / CACHE_FILE, group, key)
    if cached is not None:
        return cached
    eps = list(metadata().entry_points(group=group))
    if newest <= racy.horizon(started):
        _write(cache_dir / CACHE_FILE, group, key, eps)
    return eps


def fingerprint() -> tuple[str, int] | None:
    """``(sha256 of what decides the installed entry points, newest change in ns)``; ``None``
    when a distribution finder other than importlib's path finder is installed."""
    finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    if any(f is not importlib.machinery.PathFinder and not _backport_finder(f) for f in finders):
        return None
    h = hashlib.sha256(f"{FORMAT}\0{sys.executable}\0{sys.version}\0".encode())
    newest = 0
    for entry in sys.path:
        folder = entry or "."
        st = _stat(folder)
        if st is None or not stat.S_ISDIR(st.st_mode):  # absent, or a zip: its own stat
            h.update(f"{entry}\0{_key(st)}\0".encode("utf-8", "surrogateescape"))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns) if st is not None else newest
            continue
        h.update(f"{entry}\0dir\0".encode("utf-8", "surrogateescape"))
        for name in sorted(_listdir(folder)):
            low = name.lower()
            if low.endswith((".dist-info", ".egg-info")) or low == "egg-info":
                inner = _stat(os.path.join(folder, name, "entry_points.txt"))
                h.update(f"{name}\0{_key(inner)}\0".encode("utf-8", "surrogateescape"))
                if inner is not None:
                    newest = max(newest, inner.st_mtime_ns, inner.st_ctime_ns)
    return h.hexdigest(), newest


def _backport_finder(finder: object) -> bool:
    """``importlib_metadata`` adds its own path finder (the same search of ``sys.path``)."""
    kind = type(finder)
    return kind.__module__ == "importlib_metadata" and kind.__name__ == "MetadataPathFinder"


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _key(st: os.stat_result | None) -> str:
    if st is None:
        return "-"
    return f"{st.st_mode:o} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


def _read(file: Path, group: str, key: str) -> list[CachedEntryPoint] | None:
    try:
        with open(file, "rb") as f:
            doc = json.load(f)
        entry = doc["groups"][group] if doc.get("format") == FORMAT else None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        return [CachedEntryPoint(str(n), str(v), d if isinstance(d, str) else None)
                for n, v, d in entry["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # none yet, or corrupt: read them


def _dist_name(ep: Any) -> str | None:
    """Where the entry point's distribution is: its metadata folder (``PathDistribution``
    keeps it as ``_path``), else its name."""
    dist = getattr(ep, "dist", None)
    path = getattr(dist, "_path", None)
    if isinstance(path, os.PathLike) and os.path.isabs(path):
        return str(os.fspath(path))
    name: object = getattr(dist, "name", None)
    return str(name) if isinstance(name, str) else None


def _write(file: Path, group: str, key: str, eps: Iterable[Any]) -> None:
    doc = {"format": FORMAT, "groups": {group: {
        "key": key, "entry_points": [[ep.name, ep.value, _dist_name(ep)] for ep in eps]}}}
    tmp = file.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, file)
    except OSError:  # read-only checkout, full disk: the cache is optional
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
