"""The :class:`~mila.protocols.Hasher` contract, written once as pytest tests.

A hasher proves it keeps the contract by subclassing :class:`HasherContract` in a module pytest
collects and overriding the ``hasher`` fixture (an instance). Every test builds a small git
repository in a temporary folder (``repo``): a hasher that does not need git ignores ``.git``
as it must. What it checks, against an independent reference written here (git's blob id of
each file's bytes, and git's own ``.gitignore`` answers):

* every regular file that is not ignored is listed, with a relative POSIX path, once;
* a file's digest is its git blob id (so every hasher agrees on the same content);
* ignored files (``.gitignore``, nested ``.gitignore``, negation) and ``.git`` are left out;
* committed, staged, modified and untracked files are each hashed as they are on disk;
* an edit changes exactly that file's digest; a deleted file disappears;
* odd names (spaces, unicode, a leading dash) are listed as themselves;
* the owner's execute bit is part of a file's identity (``100755:`` + blob id);
* a symlink to a file of the project is ``120000:`` + the blob id of its target path + ``:`` +
  the target's digest; one leaving the project is a :class:`~mila.errors.MilaError`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from mila.errors import MilaError
from mila.protocols import Hasher

__all__ = ["HasherContract", "blob_id"]


def blob_id(data: bytes) -> str:
    """git's object id of a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "c", "GIT_AUTHOR_EMAIL": "c@example.com",
           "GIT_COMMITTER_NAME": "c", "GIT_COMMITTER_EMAIL": "c@example.com"}
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env=env).stdout


class HasherContract:
    """Subclass and override the ``hasher`` fixture."""

    @pytest.fixture
    def hasher(self) -> Hasher:
        raise NotImplementedError("override the `hasher` fixture")

    @pytest.fixture
    def repo(self, tmp_path: Path) -> Path:
        root = tmp_path / "repo"
        files = {
            "mila.toml": "[project]\n",
            "services/api/handler.py": "def handler(e, c):\n    return 1\n",
            "services/api/data/seed.json": '{"a": 1}\n',
            "packages/core/core.py": "VERSION = 1\n",
            ".gitignore": "*.log\nbuild/\n",
            "services/api/.gitignore": "local/\n!keep.log\n",
            "services/api/keep.log": "kept by negation\n",
        }
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "init")
        return root

    def expected(self, root: Path) -> dict[str, str]:
        """The reference: every file git does not ignore, with the blob id of its bytes."""
        listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        found = {}
        for rel in filter(None, listed.split("\0")):
            path = root / rel
            if path.is_file() and not path.is_symlink():
                found[rel] = blob_id(path.read_bytes())
        return found

    def digests(self, hasher: Hasher, root: Path) -> dict[str, str]:
        return dict(hasher.file_digests(root))

    def test_clean_tree_lists_every_file_with_its_blob_id(self, hasher: Hasher, repo: Path) -> None:
        assert self.digests(hasher, repo) == self.expected(repo)

    def test_paths_are_relative_posix_and_git_is_left_out(self, hasher: Hasher, repo: Path) -> None:
        for rel in self.digests(hasher, repo):
            assert not rel.startswith("/") and "\\" not in rel and not rel.startswith("./")
            assert not rel.startswith(".git/")

    def test_ignored_files_are_left_out(self, hasher: Hasher, repo: Path) -> None:
        (repo / "debug.log").write_text("ignored\n")
        (repo / "build").mkdir()
        (repo / "build" / "out.js").write_text("ignored\n")
        (repo / "services/api/local").mkdir()
        (repo / "services/api/local/x.txt").write_text("ignored by the nested .gitignore\n")
        found = self.digests(hasher, repo)
        assert "debug.log" not in found and "build/out.js" not in found
        assert "services/api/local/x.txt" not in found
        assert "services/api/keep.log" in found  # re-included by "!keep.log"
        assert found == self.expected(repo)

    def test_modified_staged_and_untracked_files_are_hashed_as_on_disk(self, hasher: Hasher,
                                                                        repo: Path) -> None:
        (repo / "services/api/handler.py").write_text("def handler(e, c):\n    return 2\n")
        (repo / "packages/core/core.py").write_text("VERSION = 2\n")
        _git(repo, "add", "packages/core/core.py")
        (repo / "packages/core/new.py").write_text("NEW = True\n")
        found = self.digests(hasher, repo)
        assert found["services/api/handler.py"] == blob_id(b"def handler(e, c):\n    return 2\n")
        assert found["packages/core/core.py"] == blob_id(b"VERSION = 2\n")
        assert found["packages/core/new.py"] == blob_id(b"NEW = True\n")
        assert found == self.expected(repo)

    def test_an_edit_changes_only_that_file(self, hasher: Hasher, repo: Path) -> None:
        before = self.digests(hasher, repo)
        (repo / "services/api/data/seed.json").write_text('{"a": 2}\n')
        after = self.digests(hasher, repo)
        assert {k for k in before if before[k] != after.get(k)} == {"services/api/data/seed.json"}
        assert set(after) == set(before)

    def test_a_deleted_file_disappears(self, hasher: Hasher, repo: Path) -> None:
        (repo / "packages/core/core.py").unlink()
        assert "packages/core/core.py" not in self.digests(hasher, repo)

    def test_odd_names_are_listed_as_themselves(self, hasher: Hasher, repo: Path) -> None:
        names = ["services/api/with space.txt", "services/api/ünïcødé.py", "services/api/-dash.txt"]
        for i, rel in enumerate(names):
            (repo / rel).write_text(f"odd {i}\n")
        found = self.digests(hasher, repo)
        for i, rel in enumerate(names):
            assert found.get(rel) == blob_id(f"odd {i}\n".encode()), rel

    def test_the_execute_bit_is_part_of_the_identity(self, hasher: Hasher, repo: Path) -> None:
        script = repo / "services/api/bootstrap"
        script.write_text("#!/bin/sh\necho hi\n")
        plain = self.digests(hasher, repo)["services/api/bootstrap"]
        script.chmod(0o755)
        executable = self.digests(hasher, repo)["services/api/bootstrap"]
        assert plain == blob_id(b"#!/bin/sh\necho hi\n")
        assert executable == "100755:" + plain

    def test_a_symlink_is_its_target_and_what_it_reaches(self, hasher: Hasher, repo: Path) -> None:
        (repo / "services/api/core.py").symlink_to("../../packages/core/core.py")
        found = self.digests(hasher, repo)
        target = blob_id(b"../../packages/core/core.py")
        assert found["services/api/core.py"] == f"120000:{target}:{blob_id(b'VERSION = 1' + bytes([10]))}"
        (repo / "packages/core/core.py").write_text("VERSION = 2\n")
        assert self.digests(hasher, repo)["services/api/core.py"] == \
            f"120000:{target}:{blob_id(b'VERSION = 2' + bytes([10]))}"

    def test_a_symlink_leaving_the_project_is_an_error(self, hasher: Hasher, repo: Path,
                                                       tmp_path: Path) -> None:
        outside = tmp_path / "outside.txt"
        outside.write_text("not in the repository\n")
        (repo / "services/api/outside.txt").symlink_to(outside)
        with pytest.raises(MilaError):
            self.digests(hasher, repo)
