"""Symlink identities: a link is its target path plus the content it reaches.

Packaging follows symlinks (a zipped folder ships the file or folder a link points to), so a
link's digest must change when what it reaches changes. A link's digest is
``120000:<blob id of its target path>``, followed, when the link reaches a file or a folder of
the project, by ``:`` and that file's digest, or ``:tree:<sha1>`` for a folder (the sha1 of
``path NUL digest NUL`` of every file below it, links below it with their own identity).

Resolution works on the digest map alone, never on the disk, so the ``git`` hasher, the ``fs``
hasher and an older revision (``mila affected``) resolve the same tree the same way:

* the target is followed one path component at a time, through the links of the map (as the
  kernel does), ``..`` after a link applying to where the link led;
* a target that leaves the project folder (``..`` above it, an absolute path outside it) is a
  :class:`~mila_git.blobs.HashError`: packaging would ship a file from outside the repository,
  which no checksum can see;
* a target naming no file or folder of the map (dangling, ignored by ``.gitignore``, a loop of
  more than :data:`MAX_HOPS` links) counts as its path only — packaging skips dangling links and
  ignored files never count;
* a folder whose listing reaches the link itself again (``a/loop -> ..``) lists that link by its
  path only.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from mila_git.blobs import SYMLINK, HashError, blob_id

MAX_HOPS = 40


def raw_link_digest(target: str) -> str:
    """A link counted by its target path alone."""
    return SYMLINK + blob_id(os.fsencode(target))


def resolve_links(digests: dict[str, str], targets: Mapping[str, str], root: Path) -> None:
    """Give each link of ``targets`` (``{path: target}``, all keys of ``digests``) its identity."""
    if targets:
        resolver = _Resolver(digests, targets, root)
        identities = {link: resolver.identity(link) for link in sorted(targets)}
        digests.update(identities)


class _Resolver:
    def __init__(self, digests: Mapping[str, str], targets: Mapping[str, str], root: Path) -> None:
        self.digests = digests
        self.targets = targets
        self.paths = sorted(digests)
        self.roots = {PurePosixPath(Path(root).absolute().as_posix()),
                      PurePosixPath(Path(root).resolve().as_posix())}
        self.memo: dict[str, str] = {}
        self.active: set[str] = set()
        self.cycles = 0  # cycles broken so far: an identity computed across one is not kept

    def identity(self, link: str) -> str:
        if link in self.memo:
            return self.memo[link]
        raw = raw_link_digest(self.targets[link])
        if link in self.active:  # reached again while listing a folder above it
            self.cycles += 1
            return raw
        self.active.add(link)
        cycles = self.cycles
        try:
            where = self._locate(link)
            if where is None:
                digest = raw
            elif where in self.digests:
                digest = f"{raw}:{self.digests[where]}"
            else:
                digest = f"{raw}:tree:{self._tree(where)}"
        finally:
            self.active.discard(link)
        if cycles == self.cycles:  # else it depends on which link the listing started from
            self.memo[link] = digest
        return digest

    def _target_parts(self, link: str, target: str) -> tuple[list[str], list[str]]:
        """(folder parts the target starts from, its parts)."""
        if target.startswith("/"):
            for root in self.roots:
                if PurePosixPath(target).is_relative_to(root):
                    return [], list(PurePosixPath(target).relative_to(root).parts)
            raise self._leaves(link)
        return link.split("/")[:-1], target.split("/")

    def _locate(self, link: str) -> str | None:
        """The project path ``link`` reaches (a file or folder of the map), or ``None``."""
        resolved, pending = self._target_parts(link, self.targets[link])
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise self._leaves(link)
                resolved.pop()
                continue
            resolved.append(part)
            here = "/".join(resolved)
            if here in self.targets:
                hops += 1
                if hops > MAX_HOPS:
                    return None
                resolved.pop()
                start, parts = self._target_parts(here, self.targets[here])
                if self.targets[here].startswith("/"):
                    resolved = start
                pending = parts + pending
            elif here not in self.digests and not self._is_folder(here):
                return None
        return "/".join(resolved)

    def _leaves(self, link: str) -> HashError:
        return HashError(f"the symlink '{link}' points outside the project "
                         f"(to '{self.targets[link]}'): packaging would ship a file no checksum "
                         "sees",
                         hint="replace the link by a copy of what it points to, point it inside "
                              "the project, or list it in .gitignore")

    def _bounds(self, folder: str) -> tuple[int, int]:
        if not folder:
            return 0, len(self.paths)
        lo = bisect.bisect_left(self.paths, folder + "/")
        return lo, bisect.bisect_left(self.paths, folder + "0", lo)  # "0" sorts after "/"

    def _is_folder(self, path: str) -> bool:
        lo, hi = self._bounds(path)
        return hi > lo

    def _tree(self, folder: str) -> str:
        lo, hi = self._bounds(folder)
        cut = len(folder) + 1 if folder else 0
        h = hashlib.sha1(usedforsecurity=False)
        for path in self.paths[lo:hi]:
            digest = self.identity(path) if path in self.targets else self.digests[path]
            h.update(f"{path[cut:]}\0{digest}\0".encode("utf-8", "surrogateescape"))
        return h.hexdigest()
