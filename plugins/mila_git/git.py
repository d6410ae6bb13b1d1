"""The ``git`` hasher: every input file of a project and its git object id, from three git calls.

The index already holds the blob id of every tracked file, so a clean tree is hashed without
reading a single file. Three git processes run side by side, each once for the whole repository:

* ``git ls-files -s -z`` — every tracked path with its mode and blob (submodules: commit) id;
* ``git status --porcelain -z -uno`` — tracked paths whose working-tree content differs from the
  index (modified, deleted, type-changed, unmerged); it also refreshes the index's stat data when
  it can take the lock, so a ``touch`` costs one content comparison, once;
* ``git ls-files -o --exclude-standard -z`` — untracked files ``.gitignore`` does not exclude.

Only the paths of the last two are read from disk: their working-tree content is hashed with
``git hash-object --stdin-paths`` (so clean/smudge filters and ``.gitattributes`` give the same id
the file will have once committed), symlinks as their target, nested repositories as their
commit. What counts is always the working tree: staged or not makes no difference.

It also reads other revisions for ``mila affected`` (:meth:`GitHasher.revision_digests`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from mila.errors import MilaError
from mila_git.blobs import DigestCache, file_blob_id, nested_repository_commit, symlink_blob_id

#: Never an input: mila's own caches, logs and local state.
MILA_DIR = ".mila"
GITLINK = "160000"
_UNMERGED = {"DD", "AU", "UD", "UA", "DU", "AA", "UU"}


def find_git_top(root: Path) -> Path | None:
    """The work tree holding ``root`` (the nearest folder with a ``.git``), without running git."""
    for folder in (root, *root.parents):
        if (folder / ".git").exists():
            return folder
    return None


def in_git_work_tree(root: Path) -> bool:
    """Whether ``root`` is inside a git work tree and git is installed to read it."""
    if shutil.which("git") is None:  # a checkout without git: the fs hasher takes over
        return False
    if "GIT_DIR" in os.environ:  # set by git hooks: let git decide
        return _git_prefix(root) is not None
    return find_git_top(root.resolve()) is not None


def _git_prefix(root: Path) -> str | None:
    """``root`` relative to the top of its work tree (``""`` at the top), or ``None``."""
    try:
        out = subprocess.run(["git", "rev-parse", "--show-prefix"], cwd=root,
                             capture_output=True, check=False)
    except OSError:
        return None
    return os.fsdecode(out.stdout).strip() if out.returncode == 0 else None


def _excluded(path: str) -> bool:
    return path == MILA_DIR or path.startswith(MILA_DIR + "/")


class GitError(MilaError):
    pass


class _Git:
    """A git process whose output is read on a thread, so several can run at once."""

    def __init__(self, root: Path, *args: str) -> None:
        self.args = args
        try:
            self.proc = subprocess.Popen(["git", *args], cwd=root, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror}",
                           hint="install git, or run mila outside a git work tree") from None
        self.out = b""
        self.err = b""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self.out, self.err = self.proc.communicate()

    def result(self) -> str:
        self._thread.join()
        if self.proc.returncode != 0:
            message = os.fsdecode(self.err).strip().splitlines()
            raise GitError(f"`git {' '.join(self.args[:2])}` failed: "
                           f"{message[-1] if message else self.proc.returncode}")
        return self.out.decode("utf-8", "surrogateescape")


def parse_index(listing: str) -> tuple[dict[str, str], set[str], list[str]]:
    """``git ls-files -s -z`` → (path → object id, gitlink paths, paths in a merge conflict).

    Every entry is ``<mode> <object id> <stage>\t<path>``, fixed width up to the path, so one
    slice pair per entry does (30,000 entries: 4 ms instead of 25 ms with splits). Gitlinks and
    conflicts are rare: looked for only when the listing holds one.
    """
    entries = listing.split("\0")
    entries.pop()  # after the last NUL
    if not entries:
        return {}, set(), []
    cut = entries[0].index("\t") + 1  # 50 with SHA-1 object ids, 74 with SHA-256
    digests = {e[cut:]: e[7:cut - 3] for e in entries}
    gitlinks: set[str] = set()
    conflicts: list[str] = []
    if GITLINK + " " in listing:
        gitlinks = {e[cut:] for e in entries if e.startswith(GITLINK + " ")}
    if any(f" {stage}\t" in listing for stage in "123"):
        conflicts = sorted({e[cut:] for e in entries if e[cut - 2] != "0"})
        # the working-tree file counts: it is hashed from disk
    return digests, gitlinks, conflicts


class GitHasher:
    """See the module docstring. One instance per project; ``file_digests`` may be called again."""

    name = "git"

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir

    def file_digests(self, root: Path) -> Mapping[str, str]:
        root = Path(root)
        index = _Git(root, "ls-files", "-s", "-z")
        changed = _Git(root, "status", "--porcelain", "-z", "-uno", "--no-renames",
                       "--ignore-submodules=none", "--", ".")
        untracked = _Git(root, "ls-files", "-o", "--exclude-standard", "-z")
        prefix = self._prefix(root)  # status paths are relative to the top of the work tree

        listing = index.result()
        digests, gitlinks, from_disk = parse_index(listing)
        cut = len(prefix)
        for entry in changed.result().split("\0"):
            # "XY path"; paths are relative to the top of the work tree
            if len(entry) > 3 and (entry[1] != " " or entry[:2] in _UNMERGED):
                path = entry[3:]
                if path.startswith(prefix):
                    from_disk.append(path[cut:])
        from_disk.extend(p for p in untracked.result().split("\0") if p)

        self._hash_working_tree(root, [p for p in from_disk if not _excluded(p)], digests,
                                gitlinks)
        if f"\t{MILA_DIR}/" in listing:  # committed by mistake; never an input
            for path in [p for p in digests if _excluded(p)]:
                del digests[path]
        return digests

    def _hash_working_tree(self, root: Path, paths: Iterable[str], digests: dict[str, str],
                           gitlinks: set[str]) -> None:
        """Replace the index's digest of each path by its working-tree content's (or drop it)."""
        cache = DigestCache(self.cache_dir, self.name) if self.cache_dir else None
        to_hash: list[tuple[str, os.stat_result]] = []
        for path in dict.fromkeys(paths):
            if path.endswith("/"):  # an untracked nested repository: git lists its folder
                commit = nested_repository_commit(root / path)
                if commit:
                    digests[path.rstrip("/")] = commit
                continue
            full = root / path
            try:
                st = full.lstat()
            except (FileNotFoundError, NotADirectoryError):
                digests.pop(path, None)  # deleted in the working tree
                continue
            if stat.S_ISLNK(st.st_mode):
                digests[path] = symlink_blob_id(full)
            elif stat.S_ISDIR(st.st_mode):
                commit = nested_repository_commit(full) if path in gitlinks else None
                if commit:
                    digests[path] = commit
                else:  # a file replaced by a folder: its files are listed as untracked
                    digests.pop(path, None)
            elif stat.S_ISREG(st.st_mode):
                cached = cache.get(path, st) if cache else None
                if cached:
                    digests[path] = cached
                else:
                    to_hash.append((path, st))
            else:  # sockets, fifos: nothing git could commit
                digests.pop(path, None)
        if to_hash:
            hashed = self._hash_objects(root, [p for p, _ in to_hash])
            for path, st in to_hash:
                digest = hashed.get(path)
                if digest is None:  # vanished while we hashed it
                    digests.pop(path, None)
                    continue
                digests[path] = digest
                if cache:
                    cache.put(path, st, digest)
        if cache:
            cache.save()

    def _hash_objects(self, root: Path, paths: list[str]) -> dict[str, str]:
        """Blob ids of working-tree files as git would store them (filters applied)."""
        plain = [p for p in paths if "\n" not in p]
        ids: dict[str, str] = {}
        if plain:
            out = subprocess.run(["git", "hash-object", "--stdin-paths"], cwd=root,
                                 input=os.fsencode("\n".join(plain) + "\n"),
                                 capture_output=True, check=False)
            lines = out.stdout.decode().split()
            if out.returncode == 0 and len(lines) == len(plain):
                ids.update(zip(plain, lines, strict=True))
        for p in paths:
            if p not in ids:  # a newline in its name, or git failed on it (it vanished)
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    ids[p] = file_blob_id(root / p, (root / p).stat().st_size)
        return ids

    # ------------------------------------------------------------------ other revisions

    def revision_digests(self, root: Path, revision: str) -> Mapping[str, str]:
        """``{path: object id}`` of every file under ``root`` at ``revision`` (a commit-ish)."""
        commit = self.resolve(root, revision)
        out = _Git(root, "ls-tree", "-r", "-z", "--full-name", commit, "--", ".").result()
        prefix = self._prefix(root)
        digests: dict[str, str] = {}
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            _mode, _kind, object_id = meta.split(" ")
            if path.startswith(prefix):
                rel = path[len(prefix):]
                if not _excluded(rel):
                    digests[rel] = object_id
        return digests

    def revision_files(self, root: Path, revision: str, paths: Iterable[str]) -> dict[str, bytes]:
        """Contents of ``paths`` (relative to ``root``) at ``revision``; missing ones are left out.

        One ``git cat-file --batch`` for all of them.
        """
        commit = self.resolve(root, revision)
        prefix = self._prefix(root)
        wanted = list(paths)
        if not wanted:
            return {}
        request = "".join(f"{commit}:{prefix}{p}\n" for p in wanted)
        out = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input=os.fsencode(request),
                             capture_output=True, check=False).stdout
        files: dict[str, bytes] = {}
        pos = 0
        for path in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split(b" ")
            pos = end + 1
            if header[-1] == b"missing" or len(header) != 3:
                continue
            size = int(header[2])
            if header[1] == b"blob":
                files[path] = out[pos:pos + size]
            pos += size + 1
        return files

    def resolve(self, root: Path, revision: str) -> str:
        """The commit id ``revision`` names, or a :class:`GitError` saying it names none."""
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{revision}^{{commit}}"],
                             cwd=root, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise GitError(f"'{revision}' is not a commit of this repository",
                           hint="give a branch, tag or commit id, e.g. --since origin/main")
        return out.stdout.strip()

    def _prefix(self, root: Path) -> str:
        top = None if "GIT_DIR" in os.environ else find_git_top(Path(root).resolve())
        if top is not None:
            rel = Path(root).resolve().relative_to(top).as_posix()
            return "" if rel == "." else rel + "/"
        return _git_prefix(root) or ""
