"""The ``git`` and ``fs`` hashers: which files they list, the digest each file gets, and the
cache. Every digest is a git object id, checked against git itself."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from mila_git import fs as fs_module
from mila_git import git as git_module
from mila_git.blobs import RACY_SECONDS, blob_id
from mila_git.fs import FsHasher, ignored, parse_gitignore
from mila_git.git import GitError, GitHasher
from mila_hashtest import GIT_ENV, Repo

from mila.plugins import build_plugin_manager

OLD = time.time_ns() - int(10 * RACY_SECONDS * 1e9)


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


def old_mtimes(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            os.utime(path, ns=(OLD, OLD))


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


def test_clean_tree_is_the_index_and_reads_no_file(tmp_path, monkeypatch) -> None:
    root = make(tmp_path, {"a.py": "a", "d/b.txt": "b", "name with space/ünï.txt": "u"})
    listed = {}
    for line in git(root, "ls-files", "-s", "-z").split("\0"):
        if line:
            meta, path = line.split("\t")
            listed[path] = meta.split()[1]
    reads = []
    monkeypatch.setattr(GitHasher, "_hash_objects", lambda self, r, paths: reads.append(paths) or {})
    assert dict(GitHasher(root / ".mila/cache").file_digests(root)) == listed
    assert reads == []
    assert not (root / ".mila").exists()  # nothing to cache: the cache is not even opened


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


def test_symlinks_are_their_target(tmp_path) -> None:
    root = make(tmp_path, {"target.txt": "t"})
    os.symlink("target.txt", root / "link")
    os.symlink("../nowhere", root / "dangling")
    untracked = GitHasher(None).file_digests(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "links")
    tracked = GitHasher(None).file_digests(root)
    assert untracked == tracked == FsHasher(None).file_digests(root)
    assert tracked["link"] == blob_id(b"target.txt")
    assert tracked["dangling"] == blob_id(b"../nowhere")
    os.unlink(root / "link")
    os.symlink("other", root / "link")
    assert GitHasher(None).file_digests(root)["link"] == blob_id(b"other")


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
    rules = parse_gitignore("*.pyc\n/dist\nlogs/\n!logs/keep\n", "")
    assert ignored(rules, "a/b.pyc", "b.pyc", False)
    assert ignored(rules, "dist", "dist", True) and not ignored(rules, "a/dist", "dist", True)
    assert ignored(rules, "logs", "logs", True) and not ignored(rules, "logs", "logs", False)
    nested = parse_gitignore("tmp\n", "pkg/")
    assert ignored(nested, "pkg/tmp", "tmp", False)


# --------------------------------------------------------------------------- the cache


def test_fs_cache_reads_each_unchanged_file_once(tmp_path, monkeypatch) -> None:
    root = make(tmp_path, {f"d{i}/f{j}.txt": f"{i}-{j}" for i in range(3) for j in range(5)},
                git_repo=False)
    old_mtimes(root)
    reads: list[str] = []
    real = fs_module.file_blob_id
    monkeypatch.setattr(fs_module, "file_blob_id", lambda p, s: reads.append(str(p)) or real(p, s))
    cache = root / ".mila/cache"
    first = FsHasher(cache).file_digests(root)
    assert len(reads) == 15
    reads.clear()
    assert FsHasher(cache).file_digests(root) == first
    assert reads == []
    (root / "d0/f0.txt").write_text("changed")  # recent: read now, not cached (racy)
    second = FsHasher(cache).file_digests(root)
    assert second["d0/f0.txt"] == blob_id(b"changed") and len(reads) == 1
    FsHasher(cache).file_digests(root)
    assert len(reads) == 2
    import shutil

    shutil.rmtree(root / ".mila")
    assert FsHasher(cache).file_digests(root) == second


def test_same_size_edit_within_a_clock_tick_is_not_served_stale(tmp_path) -> None:
    root = make(tmp_path, {"a.txt": "aaaa"}, git_repo=False)
    cache = root / ".mila/cache"
    st = (root / "a.txt").stat()
    FsHasher(cache).file_digests(root)
    (root / "a.txt").write_text("bbbb")
    os.utime(root / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    assert FsHasher(cache).file_digests(root)["a.txt"] == blob_id(b"bbbb")


def test_git_cache_covers_untracked_files(tmp_path, monkeypatch) -> None:
    root = make(tmp_path, {"a.py": "a"})
    for i in range(5):
        (root / f"new{i}.py").write_text(str(i))
    old_mtimes(root)
    calls: list[list[str]] = []
    real = GitHasher._hash_objects
    monkeypatch.setattr(GitHasher, "_hash_objects",
                        lambda self, r, paths: calls.append(paths) or real(self, r, paths))
    first = GitHasher(root / ".mila/cache").file_digests(root)
    assert len(calls[0]) == 5
    assert GitHasher(root / ".mila/cache").file_digests(root) == first
    assert len(calls) == 1


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
    with pytest.raises(GitError, match="not a commit"):
        h.resolve(root, "no-such-branch")


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
