"""The ``git`` and ``fs`` hashers: which files they list, the digest each file gets, and the
cache. Every digest is a file identity (a git object id, plus the mode), checked against git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mila_git import fs as fs_module
from mila_git import git as git_module
from mila_git.blobs import blob_id
from mila_git.fs import FsHasher, ignored, parse_gitignore
from mila_git.git import GitError, GitHasher
from mila_hashtest import GIT_ENV, Repo

from mila import racy
from mila.plugins import build_plugin_manager


def git(root: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          input=input, env={**os.environ, **GIT_ENV}).stdout


def hash_object(root: Path, rel: str) -> str:
    return git(root, "hash-object", "--", rel).strip()


def make(tmp_path: Path, files: dict[str, str], git_repo: bool = True) -> Path:
    root = tmp_path / "r"
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    root.mkdir(exist_ok=True)
    if git_repo:
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "x")
    return root


@pytest.fixture
def settled(monkeypatch):
    """Files written before the run count as settled (a ctime cannot be set back, so instead
    of ageing the files the racy window is closed)."""
    monkeypatch.setattr(racy, "RACY_SECONDS", 0.0)


def test_registered_with_priorities() -> None:
    reg = build_plugin_manager().registry
    assert (reg.hashers["git"].priority, reg.hashers["fs"].priority) == (10, 1000)
    assert reg.owners[("hasher", "git")] == reg.owners[("hasher", "fs")] == "git"


def test_applies_only_inside_a_work_tree(tmp_path) -> None:
    reg = build_plugin_manager().registry
    plain = make(tmp_path, {"a": "1"}, git_repo=False)
    assert not reg.hashers["git"].applies(plain)
    assert reg.hashers["fs"].applies(plain)
    git(plain, "init", "-q")
    (plain / "sub").mkdir()
    assert reg.hashers["git"].applies(plain / "sub")


def test_clean_tree_is_the_index(tmp_path) -> None:
    root = make(tmp_path, {"a.py": "a", "d/b.txt": "b", "name with space/ünï.txt": "u"})
    listed = {}
    for line in git(root, "ls-files", "-s", "-z").split("\0"):
        if line:
            meta, path = line.split("\t")
            listed[path] = meta.split()[1]
    assert dict(GitHasher(root / ".mila/cache").file_digests(root)) == listed
    # that a clean tree then reads no file: test_mila_git_index.py (a first run checks every
    # index entry once against the disk, git's "clean" is no proof for racily clean entries)


def test_working_tree_content_is_what_counts(tmp_path) -> None:
    root = make(tmp_path, {"mod.py": "1", "staged.py": "1", "both.py": "1", "gone.py": "1",
                           "unindexed.py": "1", "keep.py": "1", ".gitignore": "*.log\n"})
    (root / "mod.py").write_text("2")
    (root / "staged.py").write_text("2")
    git(root, "add", "staged.py")
    (root / "both.py").write_text("2")
    git(root, "add", "both.py")
    (root / "both.py").write_text("3")
    (root / "gone.py").unlink()
    git(root, "rm", "-q", "--cached", "unindexed.py")  # still on disk: untracked now
    (root / "new.py").write_text("new")
    (root / "x.log").write_text("ignored")
    (root / "staged-only-delete.py").write_text("1")
    digests = GitHasher(None).file_digests(root)
    assert set(digests) == {"mod.py", "staged.py", "both.py", "unindexed.py", "keep.py",
                            ".gitignore", "new.py", "staged-only-delete.py"}
    for rel in digests:
        assert digests[rel] == hash_object(root, rel), rel
    assert digests == FsHasher(None).file_digests(root)


def test_project_in_a_subfolder_of_the_repository(tmp_path) -> None:
    root = make(tmp_path, {"outside.txt": "o", "proj/a.py": "a", "proj/b/c.py": "c"})
    proj = root / "proj"
    (proj / "a.py").write_text("a2")
    (root / "outside.txt").write_text("o2")
    (proj / "new.py").write_text("n")
    digests = GitHasher(None).file_digests(proj)
    assert digests == {"a.py": blob_id(b"a2"), "b/c.py": blob_id(b"c"), "new.py": blob_id(b"n")}
    assert GitHasher(None).revision_digests(proj, "HEAD") == {"a.py": blob_id(b"a"),
                                                              "b/c.py": blob_id(b"c")}


def test_symlinks_are_their_target_and_what_they_reach(tmp_path) -> None:
    root = make(tmp_path, {"target.txt": "t", "pkg/m.py": "m"})
    os.symlink("target.txt", root / "link")
    os.symlink("nowhere", root / "dangling")
    os.symlink("pkg", root / "folder-link")
    untracked = GitHasher(None).file_digests(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "links")
    tracked = GitHasher(None).file_digests(root)
    assert untracked == tracked == FsHasher(None).file_digests(root)
    assert tracked == GitHasher(None).revision_digests(root, "HEAD")
    assert tracked["link"] == f"120000:{blob_id(b'target.txt')}:{blob_id(b't')}"
    assert tracked["dangling"] == f"120000:{blob_id(b'nowhere')}"
    assert tracked["folder-link"].startswith(f"120000:{blob_id(b'pkg')}:tree:")
    (root / "target.txt").write_text("t2")  # what packaging ships through the link changed
    (root / "pkg/m.py").write_text("m2")
    edited = GitHasher(None).file_digests(root)
    assert edited["link"] != tracked["link"] and edited["folder-link"] != tracked["folder-link"]
    assert edited == FsHasher(None).file_digests(root)
    os.unlink(root / "link")
    os.symlink("other", root / "link")
    assert GitHasher(None).file_digests(root)["link"] == f"120000:{blob_id(b'other')}"


@pytest.mark.parametrize("target", ["../../outside", "/etc/hostname", "../pkg/../../outside"])
def test_a_symlink_leaving_the_project_is_an_error(tmp_path, target) -> None:
    from mila_git.blobs import HashError

    root = make(tmp_path, {"pkg/m.py": "m"})
    os.symlink(target, root / "pkg/escape")
    for hasher in (GitHasher(None), FsHasher(None)):
        with pytest.raises(HashError, match="'pkg/escape' points outside the project"):
            hasher.file_digests(root)


def test_symlink_loops_and_chains(tmp_path) -> None:
    root = make(tmp_path, {"a/f.txt": "f"})
    os.symlink("..", root / "a/up")  # the folder holding it: listed by its target path
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink("a/up/a/f.txt", root / "chain")
    digests = GitHasher(None).file_digests(root)
    assert digests == FsHasher(None).file_digests(root)
    assert digests["loop1"] == f"120000:{blob_id(b'loop2')}"
    assert digests["chain"] == f"120000:{blob_id(b'a/up/a/f.txt')}:{blob_id(b'f')}"


def test_nested_repositories_and_submodules_are_their_commit(tmp_path) -> None:
    root = make(tmp_path, {"a.py": "a"})
    sub = root / "vendor/lib"
    sub.mkdir(parents=True)
    (sub / "x.py").write_text("x")
    git(sub, "init", "-q")
    git(sub, "add", "-A")
    git(sub, "commit", "-q", "-m", "one")
    first = git(sub, "rev-parse", "HEAD").strip()
    untracked = GitHasher(None).file_digests(root)
    assert untracked["vendor/lib"] == first and "vendor/lib/x.py" not in untracked
    assert FsHasher(None).file_digests(root) == untracked
    git(root, "add", "vendor/lib")  # a gitlink, as a submodule is in the index
    git(root, "commit", "-q", "-m", "sub")
    assert GitHasher(None).file_digests(root)["vendor/lib"] == first
    (sub / "x.py").write_text("y")
    git(sub, "commit", "-q", "-am", "two")
    second = git(sub, "rev-parse", "HEAD").strip()
    assert GitHasher(None).file_digests(root)["vendor/lib"] == second


def test_merge_conflicts_hash_the_working_tree(tmp_path) -> None:
    root = make(tmp_path, {"f.txt": "base\n"})
    git(root, "checkout", "-q", "-b", "other")
    (root / "f.txt").write_text("other\n")
    git(root, "commit", "-q", "-am", "other")
    git(root, "checkout", "-q", "main")
    (root / "f.txt").write_text("main\n")
    git(root, "commit", "-q", "-am", "main")
    subprocess.run(["git", "merge", "-q", "other"], cwd=root, capture_output=True,
                   env={**os.environ, **GIT_ENV})
    assert "<<<<<<<" in (root / "f.txt").read_text()
    digests = GitHasher(None).file_digests(root)
    assert digests["f.txt"] == blob_id((root / "f.txt").read_bytes())


def test_mila_folder_is_never_an_input(tmp_path) -> None:
    root = make(tmp_path, {".mila/state.db": "tracked by mistake", "a": "a"})
    (root / ".mila/cache").mkdir()
    (root / ".mila/cache/x").write_text("x")
    (root / "sub/.mila").mkdir(parents=True)
    (root / "sub/.mila/y").write_text("y")  # only the root's .mila is mila's
    for hasher in (GitHasher(None), FsHasher(None)):
        assert set(hasher.file_digests(root)) == {"a", "sub/.mila/y"}, hasher.name


@pytest.mark.parametrize("rules", [
    "*.log\n",
    "build/\n!build/keep.txt\n",
    "/top.txt\n",
    "docs/**/*.md\n",
    "**/cache\n",
    "*.txt\n!important.txt\n",
    "a/b/\n",
    "# comment\n\n\\#hash.txt\n",
    "[ab]*.py\n",
    "sub/*\n!sub/keep/\n",
])
def test_fs_ignores_what_git_ignores(tmp_path, rules) -> None:
    files = ["top.txt", "x/top.txt", "a.log", "x/y/z.log", "build/out.js", "build/keep.txt",
             "x/build/o.js", "docs/a.md", "docs/x/y/b.md", "docs/c.txt", "cache/c", "x/cache/d",
             "important.txt", "x/important.txt", "a/b/c.py", "x/a/b/c.py", "#hash.txt",
             "apple.py", "cherry.py", "sub/one.py", "sub/keep/two.py", "build"]
    root = make(tmp_path, {f: f for f in files if f != "build"}, git_repo=False)
    (root / ".gitignore").write_text(rules)
    (root / "x/.gitignore").write_text("*.js\n")
    git(root, "init", "-q")
    assert FsHasher(None).file_digests(root) == GitHasher(None).file_digests(root)


def test_gitignore_parser() -> None:
    rules = [parse_gitignore("*.pyc\n/dist\nlogs/\n!logs/keep\n", "")]
    assert ignored(rules, "a/b.pyc", "b.pyc", False)
    assert ignored(rules, "dist", "dist", True) and not ignored(rules, "a/dist", "dist", True)
    assert ignored(rules, "logs", "logs", True) and not ignored(rules, "logs", "logs", False)
    nested = [*rules, parse_gitignore("tmp\n!a.pyc\n", "pkg/")]
    assert ignored(nested, "pkg/tmp", "tmp", False) and not ignored(nested, "tmp", "tmp", False)
    assert not ignored(nested, "pkg/a.pyc", "a.pyc", False)  # the deeper file decides
    assert ignored(nested, "pkg/b.pyc", "b.pyc", False)


# --------------------------------------------------------------------------- the cache


def test_fs_cache_reads_each_unchanged_file_once(tmp_path, monkeypatch, settled) -> None:
    root = make(tmp_path, {f"d{i}/f{j}.txt": f"{i}-{j}" for i in range(3) for j in range(5)},
                git_repo=False)
    reads: list[str] = []
    real = fs_module.file_blob_id
    monkeypatch.setattr(fs_module, "file_blob_id", lambda p, s: reads.append(str(p)) or real(p, s))
    cache = root / ".mila/cache"
    first = FsHasher(cache).file_digests(root)
    assert len(reads) == 15
    reads.clear()
    assert FsHasher(cache).file_digests(root) == first
    assert reads == []
    (root / "d0/f0.txt").write_text("changed")
    second = FsHasher(cache).file_digests(root)
    assert second["d0/f0.txt"] == blob_id(b"changed") and len(reads) == 1
    FsHasher(cache).file_digests(root)
    assert len(reads) == 1
    import shutil

    shutil.rmtree(root / ".mila")
    assert FsHasher(cache).file_digests(root) == second


@pytest.mark.parametrize("kind", ["fs", "git"])
def test_a_rewrite_that_keeps_size_and_mtime_is_not_served_stale(tmp_path, settled, kind) -> None:
    """``cp -p``, ``rsync``, ``tar -x``, ``touch -r``: same size, same mtime, same inode; only
    the ctime tells."""
    root = make(tmp_path, {"a.txt": "aaaa"}, git_repo=kind == "git")
    (root / "new.txt").write_text("cccc")  # untracked: read and cached by git too
    hasher = (GitHasher if kind == "git" else FsHasher)(root / ".mila/cache")
    st = (root / "new.txt").stat()
    assert hasher.file_digests(root)["new.txt"] == blob_id(b"cccc")
    with open(root / "new.txt", "r+b") as f:  # in place: the inode stays
        f.write(b"dddd")
    os.utime(root / "new.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (root / "new.txt").stat().st_ino == st.st_ino
    assert hasher.file_digests(root)["new.txt"] == blob_id(b"dddd")


def test_a_file_changed_just_before_the_run_is_not_cached(tmp_path, monkeypatch) -> None:
    """git's racy rule: within RACY_SECONDS of the run a same-tick change could keep the key."""
    root = make(tmp_path, {"a.txt": "aaaa"}, git_repo=False)
    reads: list[str] = []
    real = fs_module.file_blob_id
    monkeypatch.setattr(fs_module, "file_blob_id", lambda p, s: reads.append(str(p)) or real(p, s))
    for _ in range(2):
        FsHasher(root / ".mila/cache").file_digests(root)
    assert len(reads) == 2


def test_git_cache_covers_untracked_files(tmp_path, monkeypatch, settled) -> None:
    root = make(tmp_path, {"a.py": "a"})
    for i in range(5):
        (root / f"new{i}.py").write_text(str(i))
    calls: list[str] = []
    real = git_module.file_blob_id
    monkeypatch.setattr(git_module, "file_blob_id", lambda p, size: calls.append(p) or real(p, size))
    first = GitHasher(root / ".mila/cache").file_digests(root)
    # the 5 untracked files, and a.py: the first run checks every index entry once (see
    # test_mila_git_index.py); its ctime is this second, so the next run checks it again, cached
    assert sorted(p.name for p in calls) == ["a.py", *(f"new{i}.py" for i in range(5))]
    assert GitHasher(root / ".mila/cache").file_digests(root) == first
    assert len(calls) == 6


def test_corrupt_cache_is_ignored(tmp_path) -> None:
    root = make(tmp_path, {"a.txt": "a"}, git_repo=False)
    cache = root / ".mila/cache"
    cache.mkdir(parents=True)
    (cache / "cache.db").write_text("not sqlite")
    assert FsHasher(cache).file_digests(root) == {"a.txt": blob_id(b"a")}


# --------------------------------------------------------------------------- revisions


def test_revision_files_and_digests(tmp_path) -> None:
    root = make(tmp_path, {"a.txt": "one", "d/b.txt": "two"})
    first = git(root, "rev-parse", "HEAD").strip()
    (root / "a.txt").write_text("three")
    git(root, "commit", "-q", "-am", "2")
    h = GitHasher(None)
    assert h.resolve(root, "HEAD~1") == first
    assert h.revision_digests(root, "HEAD~1") == {"a.txt": blob_id(b"one"), "d/b.txt": blob_id(b"two")}
    assert h.revision_files(root, first, ["a.txt", "missing", "d/b.txt", "d"]) == {
        "a.txt": b"one", "d/b.txt": b"two"}
    with pytest.raises(GitError, match="not a commit") as missing:
        h.resolve(root, "no-such-branch")
    assert "git log --oneline" in (missing.value.hint or "")


def test_an_unknown_remote_branch_is_to_be_fetched(tmp_path) -> None:
    root = make(tmp_path, {"a.txt": "one"})
    git(root, "remote", "add", "origin", str(tmp_path / "elsewhere"))
    with pytest.raises(GitError) as missing:
        GitHasher(None).resolve(root, "origin/main")
    assert "`git fetch origin main`" in (missing.value.hint or "")
    with pytest.raises(GitError) as other:
        GitHasher(None).resolve(root, "upstream/main")
    assert "remotes are origin" in (other.value.hint or "")


def test_git_failure_is_a_mila_error(tmp_path, monkeypatch) -> None:
    root = make(tmp_path, {"a": "a"})
    (root / ".git/index").write_text("garbage")
    with pytest.raises(GitError, match="git ls-files"):
        GitHasher(None).file_digests(root)
    monkeypatch.setattr(git_module.subprocess, "Popen", _no_git)
    with pytest.raises(GitError, match="cannot run git"):
        GitHasher(None).file_digests(root)


def _no_git(*args, **kwargs):
    raise FileNotFoundError(2, "No such file or directory")


def test_repo_builder_uses_the_git_hasher(tmp_path) -> None:
    assert Repo.create(tmp_path / "x", {"api": []}).project().hasher.name == "git"


def test_without_git_installed_the_fs_hasher_takes_over(tmp_path, monkeypatch) -> None:
    root = make(tmp_path, {"a": "a"})
    monkeypatch.setattr(git_module.shutil, "which", lambda name: None)
    assert not build_plugin_manager().registry.hashers["git"].applies(root)


def test_file_that_changed_size_since_its_stat_is_hashed_as_read(tmp_path) -> None:
    from mila_git.blobs import CHUNK, file_blob_id

    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    for stale_size in (0, 2, 10, 100, CHUNK + 5):
        assert file_blob_id(path, stale_size) == blob_id(b"0123456789"), stale_size
    big = b"x" * (CHUNK * 2 + 3)
    path.write_bytes(big)
    assert file_blob_id(path, len(big)) == blob_id(big)
    assert file_blob_id(path, 7) == blob_id(big)


# --------------------------------------------------------------------------- identity: what ships


ODD_NAMES = ["x\r", '"uv.lock"', "back\\slash", "-dash", "tab\there", " lead space", "trail space ",
             "new\nline", "ünï", os.fsdecode(b"latin1-\xe9")]


@pytest.mark.parametrize("tracked", [False, True])
def test_any_file_name_is_hashed_as_itself(tmp_path, tracked) -> None:
    root = make(tmp_path, {"x": "neighbour", "uv.lock": "lock"})
    for i, name in enumerate(ODD_NAMES):
        (root / name).write_bytes(b"odd %d" % i)
    if tracked:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "odd")
        for name in ODD_NAMES:  # dirty: read from disk
            (root / name).write_bytes((root / name).read_bytes() + b"!")
    digests = GitHasher(None).file_digests(root)
    for name in ODD_NAMES:
        assert digests[name] == blob_id((root / name).read_bytes()), repr(name)
    assert digests["x"] == blob_id(b"neighbour") and digests["uv.lock"] == blob_id(b"lock")
    assert digests == FsHasher(None).file_digests(root)


def test_a_folder_replaced_by_a_symlink_is_not_read_through_it(tmp_path) -> None:
    root = make(tmp_path, {"a/f.txt": "a", "b/f.txt": "b"})
    import shutil

    shutil.rmtree(root / "a")
    os.symlink("b", root / "a")
    digests = GitHasher(None).file_digests(root)
    assert "a/f.txt" not in digests  # git says deleted; a/f.txt on disk is b/f.txt
    assert digests == FsHasher(None).file_digests(root)


def test_the_executable_bit_counts(tmp_path) -> None:
    root = make(tmp_path, {"bootstrap": "#!/bin/sh\n", "lib.py": "x"})
    before = GitHasher(None).file_digests(root)
    os.chmod(root / "bootstrap", 0o755)
    dirty = GitHasher(None).file_digests(root)
    assert dirty["bootstrap"] == "100755:" + before["bootstrap"]
    assert dirty == FsHasher(None).file_digests(root)
    git(root, "commit", "-q", "-am", "x")
    assert GitHasher(None).file_digests(root) == dirty == GitHasher(None).revision_digests(root, "HEAD")
    os.chmod(root / "bootstrap", 0o644)
    assert GitHasher(None).file_digests(root) == before


@pytest.mark.parametrize("attributes", ["* text=auto\n", "*.txt eol=crlf\n", "*.txt text\n"])
def test_converted_files_are_hashed_as_the_bytes_that_ship(tmp_path, attributes) -> None:
    root = make(tmp_path, {".gitattributes": attributes, "plain.bin": "x"})
    (root / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "crlf")
    digests = GitHasher(None).file_digests(root)
    assert digests["crlf.txt"] == blob_id((root / "crlf.txt").read_bytes())
    assert digests == FsHasher(None).file_digests(root)
    # a checkout writes the bytes the attributes say (CRLF or LF): `mila affected` compares
    # the working tree with the revision as its checkout writes it, and sees no change
    (root / "crlf.txt").unlink()
    git(root, "checkout", "--", "crlf.txt")
    assert GitHasher(None).revision_digests(root, "HEAD") == GitHasher(None).file_digests(root)


def test_autocrlf_files_are_hashed_as_the_bytes_that_ship(tmp_path) -> None:
    root = make(tmp_path, {"a.txt": "a"})
    git(root, "config", "core.autocrlf", "true")
    (root / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "crlf")
    assert GitHasher(None).file_digests(root) == FsHasher(None).file_digests(root)
    assert GitHasher(None).revision_digests(root, "HEAD") == GitHasher(None).file_digests(root)


def test_a_converted_file_in_a_project_below_the_top_of_the_work_tree(tmp_path) -> None:
    root = make(tmp_path, {".gitattributes": "*.txt eol=crlf\n", "app/x": "x"})
    (root / "app" / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    os.chmod(root / "app" / "crlf.txt", 0o755)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "crlf")
    now = GitHasher(None).file_digests(root / "app")
    assert now["crlf.txt"] == "100755:" + blob_id(b"one\r\ntwo\r\n")
    assert GitHasher(None).revision_digests(root / "app", "HEAD") == now


def test_the_identity_follows_what_the_zip_ships(tmp_path) -> None:
    """Packaging (mila_cloudformation) records 0755 for an executable and follows links: each
    zip change is a digest change."""
    import io
    import zipfile

    from mila_cloudformation.packaging import deterministic_zip

    root = make(tmp_path, {"fn/bootstrap": "#!/bin/sh\n", "shared/lib.py": "v1"})
    os.symlink("../shared", root / "fn/shared")

    def zip_modes() -> dict[str, int]:
        with zipfile.ZipFile(io.BytesIO(deterministic_zip(root / "fn"))) as z:
            return {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}

    zips, digests = [deterministic_zip(root / "fn")], [GitHasher(None).file_digests(root)]
    assert zip_modes() == {"bootstrap": 0o644, "shared/lib.py": 0o644}
    os.chmod(root / "fn/bootstrap", 0o755)
    assert zip_modes()["bootstrap"] == 0o755
    zips.append(deterministic_zip(root / "fn"))
    digests.append(GitHasher(None).file_digests(root))
    (root / "shared/lib.py").write_text("v2")
    zips.append(deterministic_zip(root / "fn"))
    digests.append(GitHasher(None).file_digests(root))
    assert len(set(zips)) == 3
    assert digests[0]["fn/bootstrap"] != digests[1]["fn/bootstrap"]
    assert digests[1]["fn/shared"] != digests[2]["fn/shared"]


@pytest.mark.parametrize("folders", [3, 201])  # one ls-files for the folders, or for the tree
def test_untracked_folders_are_listed_file_by_file(tmp_path, folders) -> None:
    root = make(tmp_path, {"a.py": "a", ".gitignore": "*.log\n"})
    for i in range(folders):
        (root / f"new{i}/deep").mkdir(parents=True)
        (root / f"new{i}/deep/f.py").write_text(str(i))
        (root / f"new{i}/x.log").write_text("ignored")
    (root / "only-ignored").mkdir()
    (root / "only-ignored/y.log").write_text("ignored")
    (root / "[glob]*").mkdir()  # a pathspec character in a folder name is literal
    (root / "[glob]*/g.py").write_text("g")
    digests = GitHasher(None).file_digests(root)
    assert digests == FsHasher(None).file_digests(root)
    assert len(digests) == folders + 3 and digests["[glob]*/g.py"] == blob_id(b"g")


def test_tracked_files_behind_a_loop_of_links_are_gone(tmp_path) -> None:
    """git status cannot stat a/sub/f.txt (ELOOP) and skips it as unchanged; it is gone."""
    root = make(tmp_path, {"a/sub/f.txt": "x", "b/g.txt": "y"})
    import shutil

    shutil.rmtree(root / "a/sub")
    os.symlink("../b/sub", root / "a/sub")
    os.symlink("../a/sub", root / "b/sub")
    digests = GitHasher(None).file_digests(root)
    assert "a/sub/f.txt" not in digests and digests["b/g.txt"] == blob_id(b"y")
    assert digests == FsHasher(None).file_digests(root)
