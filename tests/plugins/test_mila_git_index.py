"""Racily clean index entries (``mila_git.index``), with real git: the same-second rewrite git's
status calls clean, the index formats the reader must walk, and the state kept between runs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from mila_git import blobs
from mila_git import git as git_module
from mila_git import index as index_module
from mila_git.blobs import blob_id
from mila_git.fs import FsHasher
from mila_git.git import GitHasher
from mila_git.index import STATE_FILE, RacyCheck, UnsupportedIndex, read_index
from mila_hashtest import GIT_ENV

from mila import racy


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def make(tmp_path: Path, files: dict[str, bytes], *init: str) -> Path:
    root = tmp_path / "r"
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    git(root, "init", "-q", "-b", "main", *init)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "x")
    return root


def next_second() -> int:
    """Sleep to the start of the next wall-clock second; return it. (20 ms in: the kernel
    stamps files from a coarse clock, a few milliseconds behind.)"""
    time.sleep(1 - time.time() % 1 + 0.02)
    return int(time.time())


@pytest.fixture
def settled(monkeypatch):
    """No safety margin on the clock: a file is settled once its ctime second is over."""
    monkeypatch.setattr(racy, "RACY_SECONDS", 0.0)


def index_bytes(root: Path) -> bytes:
    return (root / git(root, "rev-parse", "--git-path", "index").strip()).read_bytes()


def listed(root: Path) -> dict[str, tuple[int, str]]:
    """``git ls-files --debug``: every stage-0 entry's ctime second and object id."""
    entries: dict[str, tuple[int, str]] = {}
    for line in git(root, "-c", "core.quotepath=false", "ls-files", "-s").splitlines():
        meta, path = line.split("\t")
        entries[path] = (0, meta.split()[1])
    debug = git(root, "-c", "core.quotepath=false", "ls-files", "--debug").splitlines()
    for i, line in enumerate(debug):
        if line in entries:
            entries[line] = (int(debug[i + 1].split()[1].split(":")[0]), entries[line][1])
    return entries


def same_second_rewrite(root: Path, rel: str, chmod: bool = True) -> bytes:
    """The bug: in one second, a ctime change, a ``git status`` refreshing the entry, and a
    same-size rewrite restoring the mtime. Returns the new content; git calls the file clean."""
    path = root / rel
    for _ in range(5):
        second = next_second()
        before = path.stat()
        if chmod:
            os.chmod(path, 0o755)
            os.chmod(path, 0o644)
        changed = path.stat().st_ctime_ns // 10**9
        git(root, "status", "--porcelain")
        old = path.read_bytes()
        new = bytes([old[0] ^ 1]) + old[1:]
        path.write_bytes(new)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if int(time.time()) == second == changed:
            assert f" {rel}" not in git(root, "status", "--porcelain")  # git is blind to it
            return new
        path.write_bytes(old)  # crossed a second boundary on a loaded machine: again
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    pytest.skip("could not fit the scenario into one second on this machine")


@pytest.mark.parametrize("cache", [True, False])
def test_a_same_second_rewrite_git_calls_clean_changes_the_digest(tmp_path, cache) -> None:
    root = make(tmp_path, {"a.py": b"print('a')\n", "b.py": b"b\n"})
    cache_dir = root / ".mila/cache" if cache else None
    next_second()
    before = GitHasher(cache_dir).file_digests(root)  # the check ran: a stored horizon
    assert before["a.py"] == blob_id(b"print('a')\n")
    new = same_second_rewrite(root, "a.py")
    assert GitHasher(cache_dir).file_digests(root)["a.py"] == blob_id(new)
    next_second()  # the index still holds the old blob: the entry stays a suspect
    after = GitHasher(cache_dir).file_digests(root)
    assert after == {"a.py": blob_id(new), "b.py": before["b.py"]}
    assert after == FsHasher(None).file_digests(root)


@pytest.mark.parametrize("cache", [True, False])
def test_a_first_run_sees_a_same_second_rewrite_made_before_it(tmp_path, cache) -> None:
    """No state yet: every entry is read once."""
    root = make(tmp_path, {"a.py": b"print('a')\n", "b.py": b"b\n"})
    new = same_second_rewrite(root, "a.py")
    digests = GitHasher(root / ".mila/cache" if cache else None).file_digests(root)
    assert digests["a.py"] == blob_id(new)
    assert digests == FsHasher(None).file_digests(root)


def test_a_first_run_after_an_attribute_is_removed_reads_what_ships(tmp_path) -> None:
    """A file normalised when it was committed (CRLF on disk, LF in the index) that no
    attribute converts any more: git's recorded stat still matches, its "clean" says nothing
    about the bytes on disk. Comparing stats instead of reading (tried, reverted) missed it;
    found by the slow differential test."""
    root = make(tmp_path, {".gitattributes": b"* text=auto\n", "a.txt": b"one\r\ntwo\r\n"})
    time.sleep(2.1)  # the entries settle: git no longer looks at their content
    git(root, "status")
    (root / ".gitattributes").write_bytes(b"")
    assert " a.txt" not in git(root, "status", "--porcelain")  # git: clean
    digests = GitHasher(None).file_digests(root)
    assert digests["a.txt"] == blob_id(b"one\r\ntwo\r\n")
    assert digests == FsHasher(None).file_digests(root)


def test_a_stale_entry_stays_a_suspect_when_the_index_changes(tmp_path, settled) -> None:
    root = make(tmp_path, {"a.py": b"aaaa\n"})
    cache_dir = root / ".mila/cache"
    next_second()
    GitHasher(cache_dir).file_digests(root)
    new = same_second_rewrite(root, "a.py")
    assert GitHasher(cache_dir).file_digests(root)["a.py"] == blob_id(new)
    next_second()  # a.py's entry is now older than the horizon, but still stale
    (root / "b.py").write_text("b\n")
    git(root, "add", "b.py")  # an unrelated change: the index file is rewritten
    assert GitHasher(cache_dir).file_digests(root)["a.py"] == blob_id(new)
    next_second()
    assert GitHasher(cache_dir).file_digests(root)["a.py"] == blob_id(new)


@pytest.mark.parametrize("setting", ["core.trustctime=false", "core.checkStat=minimal"])
def test_without_ctime_checks_a_rewrite_in_any_second_is_seen(tmp_path, setting) -> None:
    root = make(tmp_path, {"a.py": b"aaaa\n"})
    key, value = setting.split("=")
    git(root, "config", key, value)
    next_second()
    git(root, "status")  # the entry, racily clean after the commit, is refreshed
    GitHasher(root / ".mila/cache").file_digests(root)
    path = root / "a.py"
    before = path.stat()
    path.write_bytes(b"AAAA\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert git(root, "status", "--porcelain", "a.py") == ""  # git compares no ctime: blind
    assert GitHasher(root / ".mila/cache").file_digests(root)["a.py"] == blob_id(b"AAAA\n")
    assert not (root / ".mila/cache" / STATE_FILE).exists()  # every entry, every run


def test_once_checked_a_clean_tree_reads_no_file(tmp_path, monkeypatch, settled) -> None:
    root = make(tmp_path, {"a.py": b"a", "d/b.txt": b"b", "name with space/\u00fcn\u00ef.txt": b"u"})
    reads: list[str] = []
    real = blobs.file_blob_id
    monkeypatch.setattr(git_module, "file_blob_id",
                        lambda p, size: reads.append(os.fspath(p)) or real(p, size))
    cache_dir = root / ".mila/cache"
    next_second()
    first = GitHasher(cache_dir).file_digests(root)  # no horizon yet: every entry once
    assert len(reads) == 3
    parses: list[int] = []
    monkeypatch.setattr(index_module, "read_index",
                        lambda *a: parses.append(1) or read_index(*a))
    reads.clear()
    assert GitHasher(cache_dir).file_digests(root) == first
    assert (reads, parses) == ([], [])  # unchanged index: neither parsed nor any file read
    (root / "new.py").write_text("n")
    git(root, "add", "new.py")
    GitHasher(cache_dir).file_digests(root)
    assert parses == [1]  # the index changed: parsed once, only the recent entry is a suspect
    assert reads == [os.fspath(root / "new.py")]


def test_a_corrupt_or_missing_state_gives_the_same_digests(tmp_path, settled) -> None:
    root = make(tmp_path, {"a.py": b"a", "b.py": b"b"})
    cache_dir = root / ".mila/cache"
    next_second()
    same_second_rewrite(root, "a.py")
    expected = FsHasher(None).file_digests(root)
    assert GitHasher(cache_dir).file_digests(root) == expected
    state = cache_dir / STATE_FILE
    assert json.loads(state.read_text())["pending"].keys() == {"a.py"}  # stale: kept
    for garbage in ["{", "[]", '{"format": 1}', '{"format": 1, "horizon": "x", "index": 1, '
                    '"pending": {"a.py": 3}}', "\x00\xff"]:
        state.write_text(garbage)
        assert GitHasher(cache_dir).file_digests(root) == expected
    state.unlink()
    assert GitHasher(cache_dir).file_digests(root) == expected


# ------------------------------------------------------------------ the index formats


def check_reader(root: Path, hash_size: int = 20) -> dict[str, tuple[int, str]]:
    """The reader agrees with git on every entry, and the hasher with the fs hasher."""
    found = read_index(index_bytes(root), hash_size, "", 0)
    assert found == {p: e for p, e in listed(root).items() if p in found}
    assert GitHasher(root / ".mila/cache").file_digests(root) == FsHasher(None).file_digests(root)
    return found


@pytest.mark.parametrize("version", [2, 3, 4])
def test_index_versions(tmp_path, version) -> None:
    files = {f"d{i % 3}/sub/file{i}.py": f"{i}\n".encode() for i in range(40)}
    root = make(tmp_path, {**files, "x.py": b"x\n", "\u00e9t\u00e9.txt": b"e"})
    git(root, "update-index", "--index-version", str(version))
    if version >= 3:  # extended flags: intent-to-add, skip-worktree
        (root / "ita.py").write_text("ita\n")
        git(root, "add", "-N", "ita.py")
        git(root, "update-index", "--skip-worktree", "x.py")
    assert index_bytes(root)[4:8] == version.to_bytes(4, "big")
    found = check_reader(root)
    assert len(found) >= 41 and "\u00e9t\u00e9.txt" in found
    assert "x.py" not in found if version >= 3 else "x.py" in found  # git never compares it
    prefixed = read_index(index_bytes(root), 20, "d1/", 0)
    assert prefixed == {p[3:]: e for p, e in found.items() if p.startswith("d1/")}
    second = max(c for c, _ in found.values())
    assert read_index(index_bytes(root), 20, "", second + 1) == {}
    assert read_index(index_bytes(root), 20, "", second + 1, frozenset({second})) == \
        {p: e for p, e in found.items() if e[0] == second}


@pytest.mark.parametrize("version", [2, 4])
def test_a_path_longer_than_the_name_field(tmp_path, version) -> None:
    """0xFFF in the flags means 4095 bytes or more: the name runs to its NUL. Linux allows
    relative paths up to 4095 bytes (PATH_MAX with its NUL), hence exactly 4095."""
    folder = "/".join(["f" * 200] * 20)  # 4019 bytes
    rel = f"{folder}/{'n' * (4095 - len(folder) - 1)}"
    assert len(rel) == 4095
    root = make(tmp_path, {"a.py": b"a"})
    os.makedirs(root / folder)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        Path(rel).write_text("long\n")
    finally:
        os.chdir(cwd)
    (root / "z.py").write_text("z\n")
    git(root, "add", "-A")
    git(root, "update-index", "--index-version", str(version))
    found = read_index(index_bytes(root), 20, "", 0)
    assert found == listed(root) and rel in found and "z.py" in found


def test_sha256_repository(tmp_path, settled) -> None:
    root = make(tmp_path, {"a.py": b"a\n", "d/b.py": b"b\n"}, "--object-format=sha256")
    found = read_index(index_bytes(root), 32, "", 0)
    assert found == listed(root) and len(found["a.py"][1]) == 64
    next_second()
    cache_dir = root / ".mila/cache"
    GitHasher(cache_dir).file_digests(root)
    new = same_second_rewrite(root, "a.py")
    assert GitHasher(cache_dir).file_digests(root)["a.py"] == blob_id(new)
    pending = json.loads((cache_dir / STATE_FILE).read_text())["pending"]
    assert list(pending) == ["a.py"]  # verified in SHA-256: only the stale entry is kept


def test_a_split_index_makes_every_tracked_file_a_suspect(tmp_path) -> None:
    root = make(tmp_path, {"a.py": b"a", "b.py": b"b"})
    git(root, "update-index", "--split-index")
    (root / "c.py").write_text("c")
    git(root, "add", "c.py")
    with pytest.raises(UnsupportedIndex, match="link"):
        read_index(index_bytes(root), 20, "", 0)
    check = RacyCheck(root / ".mila/cache")
    tracked = {"a.py": "", "b.py": "", "c.py": ""}
    assert check.suspects(root, root / ".git/index", 20, "", True, tracked) == list(tracked)
    check.settle(root, {}, {})
    assert not (root / ".mila/cache" / STATE_FILE).exists()  # nothing learnt: all again
    new = same_second_rewrite(root, "a.py", chmod=True)
    assert GitHasher(root / ".mila/cache").file_digests(root)["a.py"] == blob_id(new)


def test_bad_index_data_is_unsupported() -> None:
    with pytest.raises(UnsupportedIndex):
        read_index(b"DIRC" + (9).to_bytes(4, "big") + bytes(40), 20, "", 0)
    with pytest.raises(UnsupportedIndex):
        read_index(b"DIRC" + (2).to_bytes(4, "big") + (5).to_bytes(4, "big") + bytes(30), 20,
                   "", 0)
