"""Differential test of change detection: random monorepos, random operations, an oracle.

A hypothesis ``RuleBasedStateMachine`` builds a git monorepo (services and packages, custom
names, dependencies by name, package name and folder name, a root ``src``), then applies edits,
touches, same-size rewrites that keep the mtime, ``chmod``, renames across workspaces, odd file
names, untracked and ignored files, ``.gitignore`` and ``.gitattributes`` edits, symlinks (to
files, to folders, dangling, a folder replaced by a link), manifest edits, commits, stashes and
copies of the repository elsewhere. After each step it checks:

* the services and packages whose checksum changed are exactly those the oracle says changed;
* the ``fs`` hasher gives the same checksums as the ``git`` hasher;
* a run without the digest cache gives the same checksums;
* (the ``moved`` rule) a copy of the repository in another folder gives the same checksums.

The oracle is written from ``docs/change-detection.md`` and ``docs/configuration.md`` alone: it
reads files, stats them, resolves links with the OS and asks git only which paths are ignored
(``git check-ignore``); it imports nothing of mila's hashing nor ``mila_git``. It does not
compute mila's digests: it fingerprints each workspace from what the docs say counts (file bytes,
executable bit, link targets and what they reach, the parsed manifest, inferred dependencies,
root ``src`` files) and compares fingerprints between steps.

The default run is bounded (2 examples of 8 steps, a few seconds; ``MILA_DIFF_EXAMPLES=N`` for
more); the ``slow``-marked test runs 60 examples of 30 steps, shrinking a failure (5.5 min on 2
shared CPUs).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import tomllib
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from mila_hashtest import GIT_ENV

PLUGINS = {"MILA_PLUGINS": "mila_hashtest"}
#: folder -> (kind, custom name or None)
WORKSPACES = {
    "services/s0": ("service", None),
    "services/s1": ("service", "orders"),
    "services/s2": ("service", None),
    "packages/p0": ("package", None),
    "packages/p1": ("package", "lib-shared"),
}
FOLDERS = sorted(WORKSPACES)
SERVICE_FOLDERS = [f for f in FOLDERS if WORKSPACES[f][0] == "service"]
NAMES = ["a.py", "b.txt", "sub/f.txt", "sub/deep/g.py", "x\r", '"q"', "back\\slash", "-dash",
         "sp ace", "ünï.txt", os.fsdecode(b"latin-\xe9.txt"), "k.log", "build/out.js", "bootstrap"]
CONTENTS = st.sampled_from([b"", b"one\n", b"two\n", b"one\r\ntwo\r\n", b"\x00\xff", b"2222\n"])
IGNORE_RULES = ["*.log", "build/", "*.tmp", "!keep.log", "/sub/f.txt", "sub/"]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def git(root: Path, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
    return subprocess.run(["git", *args], cwd=root, input=input, capture_output=True, check=check,
                          env={**os.environ, **GIT_ENV}).stdout


# --------------------------------------------------------------------------- the oracle


class Oracle:
    """Fingerprints of every workspace, from the documented rules (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)

    def fingerprints(self) -> dict[str, str]:
        paths = self._walk()
        self.ignored = self._ignored(paths)
        self.counted = {p for p in paths if p not in self.ignored}
        tables = {f: self._manifest(f) for f in FOLDERS}
        names = {f: tables[f].get("name", f.rsplit("/", 1)[1]) for f in FOLDERS}
        deps = self._dependencies(tables, names)
        root_files = {p: self._identity(p) for p in ["uv.lock"] if p in self.counted}
        out: dict[str, str] = {}
        for folder in self._order(deps):
            files = {p[len(folder) + 1:]: self._identity(p) for p in sorted(self.counted)
                     if p.startswith(folder + "/") and p != f"{folder}/mila.toml"}
            own = (WORKSPACES[folder][0], names[folder], repr(sorted(tables[folder].items())),
                   sorted(names[d] for d in deps[folder]), sorted(files.items()),
                   sorted(root_files.items()), [out[names[d]] for d in sorted(deps[folder])])
            out[names[folder]] = hashlib.sha256(repr(own).encode("utf-8", "surrogateescape")).hexdigest()
        return out

    def _walk(self) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            dirnames[:] = [d for d in dirnames if d not in (".git", ".mila") or rel != "."]
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                found.append(name if rel == "." else f"{rel}/{name}")
        return found

    def _ignored(self, paths: list[str]) -> set[str]:
        if not paths:
            return set()
        out = git(self.root, "check-ignore", "-z", "--stdin",
                  input=b"".join(os.fsencode(p) + b"\0" for p in paths), check=False)
        return {os.fsdecode(p) for p in out.split(b"\0") if p}

    def _manifest(self, folder: str) -> dict:
        doc = tomllib.loads((self.root / folder / "mila.toml").read_text())
        return doc.get("service") or doc.get("package") or {}

    def _dependencies(self, tables: dict[str, dict], names: dict[str, str]) -> dict[str, set[str]]:
        """depends_on by name; requirements by mila name, then package name, then folder."""
        aliases: dict[str, str] = {normalize(names[f]): f for f in FOLDERS}
        packages = {}
        for f in FOLDERS:
            pyproject = self.root / f / "pyproject.toml"
            project = tomllib.loads(pyproject.read_text()).get("project", {}) if pyproject.is_file() else {}
            packages[f] = project
            if "name" in project:
                aliases.setdefault(normalize(project["name"]), f)
        for f in FOLDERS:
            aliases.setdefault(normalize(f.rsplit("/", 1)[1]), f)
        by_name = {names[f]: f for f in FOLDERS}
        deps = {}
        for f in FOLDERS:
            wanted = {by_name[n] for n in tables[f].get("depends_on", [])}
            for req in packages[f].get("dependencies", []):
                target = aliases.get(normalize(re.split(r"[<>=!~ \[;]", req)[0]))
                if target:
                    wanted.add(target)
            wanted.discard(f)
            deps[f] = wanted
        return deps

    def _order(self, deps: dict[str, set[str]]) -> list[str]:
        done: list[str] = []
        while len(done) < len(deps):
            done += [f for f in sorted(deps) if f not in done and deps[f] <= set(done)]
        return done

    def _identity(self, rel: str, seen: frozenset[str] = frozenset()) -> tuple:
        path = self.root / rel
        st_ = path.lstat()
        if stat.S_ISLNK(st_.st_mode):
            return ("link", os.readlink(path), self._reached(rel, seen | {rel}))
        return ("file", path.read_bytes(), bool(st_.st_mode & stat.S_IXUSR))

    def _reached(self, rel: str, seen: frozenset[str]):
        real = os.path.realpath(self.root / rel)
        assert real == self.real_root or real.startswith(self.real_root + os.sep), "links stay inside"
        target = os.path.relpath(real, self.real_root)
        if os.path.isdir(real):
            prefix = "" if target == "." else target + "/"
            listing = []
            for p in sorted(self.counted):
                if p.startswith(prefix):
                    listing.append((p[len(prefix):], ("link", os.readlink(self.root / p))
                                    if p in seen else self._identity(p, seen)))
            return listing or None  # an empty folder ships nothing, as a dangling link
        if os.path.isfile(real) and target in self.counted:
            return self._identity(target, seen)
        return None


# --------------------------------------------------------------------------- the machine


class ChangeDetection(RuleBasedStateMachine):
    """Operations on a monorepo; after each, mila's changed set must be the oracle's."""

    @initialize(data=st.data())
    def build(self, data) -> None:
        from mila import racy  # the system under test, not the oracle

        self._racy = racy.RACY_SECONDS
        racy.RACY_SECONDS = 0.02  # so the digest cache serves entries within a short test
        self.tmp = Path(tempfile.mkdtemp())
        self.root = self.tmp / "repo"
        self.operations = 0
        self._write("mila.toml", 'src = ["uv.lock"]\n[project]\nname = "shop"\n'
                    'default_region = "eu-west-1"\nworkspaces = ["packages/*", "services/*"]\n'
                    '[state]\nbackend = "local"\n')
        self._write("uv.lock", "lock 1\n")
        self._write("README.md", "readme\n")
        for folder, (kind, name) in WORKSPACES.items():
            table = f'[{kind}]\n' + (f'name = "{name}"\n' if name else "")
            if kind == "service":
                table += 'deployer = "hashtest"\n'
            self._write(f"{folder}/mila.toml", table)
            for rel in data.draw(st.lists(st.sampled_from(NAMES[:4]), min_size=1, max_size=3)):
                self._write(f"{folder}/{rel}", data.draw(CONTENTS))
        # requirements naming workspaces by folder (p1 is "lib-shared") and by package name
        self._write("packages/p0/pyproject.toml", '[project]\nname = "p-zero"\ndependencies = ["p1"]\n')
        self._write("services/s0/pyproject.toml", '[project]\nname = "s0"\ndependencies = ["p-zero"]\n')
        self._write("services/s2/pyproject.toml", '[project]\nname = "s2"\ndependencies = ["P1>=1"]\n')
        git(self.root, "init", "-q", "-b", "main")
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", "init")
        self.oracle = Oracle(self.root)
        self.expected = self.oracle.fingerprints()
        self.actual = self._checksums()

    def teardown(self) -> None:
        from mila import racy

        if hasattr(self, "tmp"):
            racy.RACY_SECONDS = self._racy
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ helpers

    def _write(self, rel: str, content: str | bytes) -> None:
        path = self.root / rel
        if any(p.is_symlink() for p in path.parents):
            return  # not through a folder replaced by a link
        if path.is_symlink() or path.is_dir():
            self._remove(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    def _remove(self, rel: str) -> None:
        path = self.root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_symlink() or path.exists():
            path.unlink()

    def _files(self) -> list[str]:
        return sorted(p for p in Oracle(self.root)._walk()
                      if not (self.root / p).is_symlink() and not p.endswith(".toml"))

    def _project(self, root: Path | None = None):
        from mila.project import load_project

        return load_project(root or self.root, environ=PLUGINS)

    def _checksums(self, root: Path | None = None, digests=None) -> dict[str, str]:
        from mila.checksums import compute_checksums

        project = self._project(root)
        if digests is None:
            digests = project.hasher.file_digests(project.root)
        found = compute_checksums(project.graph, digests, project.config, project.deployer_version)
        return {n: c.checksum for n, c in found.items()}

    def _step(self) -> None:
        self.operations += 1
        expected = self.oracle.fingerprints()
        actual = self._checksums()
        want = {n for n in expected if expected[n] != self.expected.get(n)}
        got = {n for n in actual if actual[n] != self.actual.get(n)}
        assert got == want, f"changed: mila says {sorted(got)}, the oracle {sorted(want)}"
        self.expected, self.actual = expected, actual

    # ------------------------------------------------------------ operations

    @rule(folder=st.sampled_from([*FOLDERS, ""]), name=st.sampled_from(NAMES), content=CONTENTS)
    def write(self, folder, name, content) -> None:
        self._write(f"{folder}/{name}" if folder else name, content)
        self._step()

    @rule(data=st.data())
    def delete(self, data) -> None:
        files = self._files()
        if files:
            self._remove(data.draw(st.sampled_from(files)))
        self._step()

    @rule(data=st.data(), to=st.sampled_from(FOLDERS), name=st.sampled_from(NAMES))
    def rename(self, data, to, name) -> None:
        files = self._files()
        if files:
            source = data.draw(st.sampled_from(files))
            target = f"{to}/{name}"
            # not through a folder replaced by a link (a loop or a dangling one included)
            if not any(p.is_symlink() for p in (self.root / target).parents) and source != target:
                self._remove(target)
                (self.root / target).parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.root / source, self.root / target)
        self._step()

    @rule(data=st.data())
    def touch(self, data) -> None:
        files = self._files()
        if files:
            os.utime(self.root / data.draw(st.sampled_from(files)))
        self._step()

    @rule(data=st.data())
    def rewrite_keeping_size_and_mtime(self, data) -> None:
        """``cp -p``, ``rsync --inplace``, ``touch -r``: new bytes, same size, same mtime."""
        files = [p for p in self._files() if (self.root / p).stat().st_size]
        if files:
            path = self.root / data.draw(st.sampled_from(files))
            before = path.stat()
            # often in the same second as a chmod and a git status that refreshed the entry:
            # git then calls the file clean (whole-second ctimes); mila_git.index catches it
            old = path.read_bytes()
            with open(path, "r+b") as f:
                f.write(bytes([old[0] ^ 1]) + old[1:])
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self._step()

    @rule(data=st.data(), executable=st.booleans())
    def chmod(self, data, executable) -> None:
        files = self._files()
        if files:
            os.chmod(self.root / data.draw(st.sampled_from(files)), 0o755 if executable else 0o644)
        self._step()

    @rule(folder=st.sampled_from([*FOLDERS, ""]), rules=st.lists(st.sampled_from(IGNORE_RULES),
                                                                 max_size=3))
    def gitignore(self, folder, rules) -> None:
        self._write(f"{folder}/.gitignore" if folder else ".gitignore", "".join(r + "\n" for r in rules))
        self._step()

    @rule(folder=st.sampled_from(FOLDERS),
          attributes=st.sampled_from(["", "* text=auto\n", "*.txt eol=crlf\n", "*.py -text\n"]))
    def gitattributes(self, folder, attributes) -> None:
        self._write(f"{folder}/.gitattributes", attributes)
        self._step()

    @rule(folder=st.sampled_from(FOLDERS), name=st.sampled_from(["lnk", "sub/lnk", "l2"]),
          to=st.sampled_from(["a.py", "sub", "../p0", "../../packages/p1/sub",
                                  "../../packages/p0/a.py", "nowhere", "lnk", "../s0/lnk"]))
    def symlink(self, folder, name, to) -> None:
        path = self.root / folder / name
        if not path.parent.is_symlink():
            self._remove(f"{folder}/{name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(to, path)
        self._step()

    @rule(folder=st.sampled_from(FOLDERS), other=st.sampled_from(FOLDERS))
    def folder_becomes_a_symlink(self, folder, other) -> None:
        if folder != other:
            self._remove(f"{folder}/sub")
            os.symlink(f"../../{other}/sub", self.root / folder / "sub")
        self._step()

    @rule(folder=st.sampled_from(SERVICE_FOLDERS),
          edit=st.sampled_from(["comment", "timeout", "depends", "clear"]))
    def manifest(self, folder, edit) -> None:
        path = self.root / folder / "mila.toml"
        text = path.read_text()
        if edit == "comment":
            text += "# a comment\n"
        elif edit == "timeout":
            text += "timeout = 30\n" if "timeout" not in text else ""
        elif edit == "depends" and "depends_on" not in text:
            text += 'depends_on = ["p0"]\n'
        elif edit == "clear":
            text = "\n".join(line for line in text.splitlines()
                             if not line.startswith(("timeout", "depends_on", "#"))) + "\n"
        path.write_text(text)
        self._step()

    @rule(how=st.sampled_from(["commit", "stage", "stash"]))
    def git_operation(self, how) -> None:
        if how in ("commit", "stage"):
            git(self.root, "add", "-A")
            if how == "commit":
                git(self.root, "commit", "-q", "--allow-empty", "-m", "step")
        else:  # git refuses some trees (a tracked folder now a link): then nothing is stashed
            stashes = git(self.root, "stash", "list")
            git(self.root, "stash", "push", "-q", "-u", check=False)
            if git(self.root, "stash", "list") != stashes:
                # git may fail to pop onto some trees it stashed (a folder replaced by a link):
                # the tree is then whatever git left, which the oracle reads like any other
                git(self.root, "stash", "pop", "-q", check=False)
        self._step()

    @rule()
    def moved(self) -> None:
        """A copy of the repository in another folder (no cache) gives the same checksums."""
        copy = self.tmp / f"moved-{self.operations}" / "elsewhere"
        shutil.copytree(self.root, copy, symlinks=True, ignore=shutil.ignore_patterns(".mila"))
        try:
            assert self._checksums(copy) == self.actual
        finally:
            shutil.rmtree(copy.parent)

    # ------------------------------------------------------------ invariants

    @invariant()
    def hashers_agree_and_the_cache_changes_nothing(self) -> None:
        if not hasattr(self, "actual"):
            return
        from mila_git.fs import FsHasher
        from mila_git.git import GitHasher

        assert self._checksums(digests=GitHasher(None).file_digests(self.root)) == self.actual
        if not git(self.root, "ls-files", "-ci", "--exclude-standard"):
            # (a committed file that .gitignore matches counts for git; fs cannot know it)
            assert self._checksums(digests=FsHasher(None).file_digests(self.root)) == self.actual


def _settings(examples: int, steps: int, shrink: bool) -> settings:
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    suppress_health_check=list(HealthCheck), phases=phases)


def test_change_detection_matches_the_oracle() -> None:
    examples = int(os.environ.get("MILA_DIFF_EXAMPLES", 2))
    ChangeDetection.TestCase.settings = _settings(examples=examples, steps=8, shrink=False)
    ChangeDetection.TestCase().runTest()


@pytest.mark.slow
def test_change_detection_matches_the_oracle_many_examples() -> None:
    ChangeDetection.TestCase.settings = _settings(examples=60, steps=30, shrink=True)
    ChangeDetection.TestCase().runTest()
