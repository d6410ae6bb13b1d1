"""The ``fs`` hasher: a plain walk of the project folder, for projects outside a git work tree. It
gives the same digests the ``git`` hasher gives for the same content (file identities), and
honours the ``.gitignore`` files it finds with git's rules (``pathspec``'s ``GitIgnoreSpec``).
Unlike git it does not read the global excludes file or ``.git/info/exclude`` (there is no
repository). ``.git`` and ``.mila`` folders are never walked; a nested repository counts as its
checked-out commit, as in git. Each file is read once; later runs take unchanged files' digests
from the cache. Digests are file identities (content, executable bit, symlinks with what they
reach): see :mod:`mila_git.blobs`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pathspec

from mila_git.blobs import (
    DigestCache,
    file_blob_id,
    identity,
    is_executable,
    link_target,
    nested_repository_commit,
)
from mila_git.links import raw_link_digest, resolve_links


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """The rules of one ``.gitignore``: ``base`` is its folder relative to the root (``""`` or
    ``"a/b/"``), ``spec`` its patterns as ``pathspec``'s ``GitIgnoreSpec`` (git's own rules)."""

    base: str
    spec: pathspec.GitIgnoreSpec


def parse_gitignore(text: str, base: str) -> IgnoreRules:
    return IgnoreRules(base, pathspec.GitIgnoreSpec.from_lines(text.splitlines()))


def ignored(rules: list[IgnoreRules], rel: str, name: str, is_dir: bool) -> bool:
    """git's rule: the deepest ``.gitignore`` with a matching pattern decides, and in it the
    last matching pattern (``name`` is kept for callers; the path decides)."""
    for rule in reversed(rules):
        if not rel.startswith(rule.base):
            continue
        match = rule.spec.check_file(rel[len(rule.base):] + ("/" if is_dir else ""))
        if match.include is not None:
            return bool(match.include)
    return False


class FsHasher:
    """See the module docstring."""

    name = "fs"

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir

    def file_digests(self, root: Path) -> Mapping[str, str]:
        root = Path(root)
        cache = DigestCache(self.cache_dir, self.name) if self.cache_dir else None
        digests: dict[str, str] = {}
        links: dict[str, str] = {}
        # folders to walk: (absolute path, relative prefix "" or "a/b/", rules in force)
        stack: list[tuple[str, str, list[IgnoreRules]]] = [(str(root), "", [])]
        while stack:
            folder, prefix, rules = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            names = {e.name for e in entries}
            if ".gitignore" in names:
                try:
                    text = Path(folder, ".gitignore").read_text(encoding="utf-8", errors="replace")
                    rules = [*rules, parse_gitignore(text, prefix)]
                except OSError:
                    pass
            for entry in entries:
                name = entry.name
                rel = prefix + name
                if name == ".git" or (not prefix and name == ".mila"):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                if rules and ignored(rules, rel, name, is_dir):
                    continue
                if is_dir:
                    if os.path.lexists(os.path.join(entry.path, ".git")):
                        commit = nested_repository_commit(entry.path)
                        if commit:
                            digests[rel] = commit
                            continue
                    stack.append((entry.path, rel + "/", rules))
                elif stat.S_ISLNK(st.st_mode):
                    links[rel] = link_target(entry.path)
                    digests[rel] = raw_link_digest(links[rel])
                elif stat.S_ISREG(st.st_mode):
                    digest = cache.get(rel, st) if cache else None
                    if digest is None:
                        try:
                            digest = file_blob_id(entry.path, st.st_size)
                        except FileNotFoundError:
                            continue
                        if cache:
                            cache.put(rel, st, digest)
                    digests[rel] = identity(digest, is_executable(st))
        if cache:
            cache.save()
        resolve_links(digests, links, root)
        return digests
