"""Service checksums: what changes them, what does not, and how a change is explained.

Property tests run each scenario with the ``git`` hasher (a git repository) and with the ``fs``
hasher (the same files, no repository): a service's checksum changes exactly when one of its
files, its config, a dependency, a root ``src`` file, its deployer or a plugin input changes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import mila_hashtest
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mila_hashtest import Repo, changed

from mila.checksums import (
    Checksum,
    deploy_checksum,
    select_files,
    workspace_checksums,
)
from mila.explain import explain

GRAPH = {"services": {"api": ["core"], "web": ["ui"], "jobs": [], "edge": ["api"]},
         "packages": {"core": [], "ui": ["core"], "lone": []}}


def dependents(name: str) -> set[str]:
    """``name`` and every workspace of GRAPH that depends on it, transitively."""
    deps = {**GRAPH["services"], **GRAPH["packages"]}
    out = {name}
    grew = True
    while grew:
        grew = False
        for ws, ds in deps.items():
            if ws not in out and out & set(ds):
                out.add(ws)
                grew = True
    return out


@pytest.fixture(params=["git", "fs"])
def repo(request, tmp_path) -> Repo:
    return Repo.create(tmp_path / "repo", GRAPH["services"], GRAPH["packages"],
                       git=request.param == "git")


def test_hasher_follows_the_repository(tmp_path) -> None:
    assert Repo.create(tmp_path / "a", {"api": []}).project().hasher.name == "git"
    assert Repo.create(tmp_path / "b", {"api": []}, git=False).project().hasher.name == "fs"


def test_checksums_are_hex_sha256_and_stable(repo) -> None:
    first = repo.checksums()
    assert set(first) == set(GRAPH["services"]) | set(GRAPH["packages"])
    assert all(len(c) == 64 and int(c, 16) >= 0 for c in first.values())
    assert len(set(first.values())) == len(first)  # no two workspaces collide
    assert repo.checksums() == first


def test_moving_the_repository_keeps_every_checksum(repo, tmp_path) -> None:
    before = repo.checksums()
    moved = tmp_path / "elsewhere" / "deeper"
    moved.parent.mkdir()
    shutil.move(str(repo.root), str(moved))
    assert Repo(moved).checksums() == before
    copied = tmp_path / "copy"
    shutil.copytree(moved, copied, symlinks=True)
    assert Repo(copied).checksums() == before


def test_touch_keeps_every_checksum(repo) -> None:
    before = repo.checksums()
    for path in repo.root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert repo.checksums() == before
    for path in repo.root.rglob("*.py"):
        path.touch()
    assert repo.checksums() == before


def test_deleting_the_cache_changes_nothing(repo) -> None:
    repo.write("services/api/new.py", "x = 1\n")  # untracked: cached by the git hasher too
    before = repo.checksums()
    assert (repo.root / ".mila").exists() or True
    shutil.rmtree(repo.root / ".mila", ignore_errors=True)
    assert repo.checksums() == before


def test_editing_a_shared_package_changes_every_dependent_service_and_no_other(repo) -> None:
    before = repo.checksums()
    repo.write("packages/core/core.py", "NAME = 'core 2'\n")
    assert changed(before, repo.checksums()) == {"core", "ui", "api", "web", "edge"}
    assert dependents("core") == {"core", "ui", "api", "web", "edge"}


def test_ignored_files_change_nothing(repo) -> None:
    repo.write(".gitignore", "*.log\nbuild/\n/services/api/local.env\n")
    if (repo.root / ".git").exists():
        repo.commit()
    before = repo.checksums()
    repo.write("services/api/debug.log", "noise")
    repo.write("services/web/build/out.js", "bundle")
    repo.write("services/api/local.env", "SECRET=1")
    assert repo.checksums() == before
    repo.write("services/jobs/local.env", "x")  # the rule was anchored to services/api
    assert changed(before, repo.checksums()) == {"jobs"}


def test_root_src_files_reach_every_workspace(tmp_path) -> None:
    repo = Repo.create(tmp_path / "r", {"api": [], "web": []}, {"core": []},
                       root_src=["uv.lock", "config/*.json"])
    repo.write("uv.lock", "lock 1")
    before = repo.checksums()
    repo.write("uv.lock", "lock 2")
    after = repo.checksums()
    assert changed(before, after) == {"api", "web", "core"}
    repo.write("config/a.json", "{}")
    assert changed(after, repo.checksums()) == {"api", "web", "core"}
    repo.write("README.md", "not a root src file")
    third = repo.checksums()
    repo.write("README.md", "still not")
    assert repo.checksums() == third


def test_service_src_globs_choose_the_files_that_count(tmp_path) -> None:
    repo = Repo.create(tmp_path / "r", {"api": []},
                       service_toml={"api": 'src = ["src", "template.yaml", "**/*.sql"]\n'})
    repo.write("services/api/src/app.py", "1")
    before = repo.checksums()
    for rel in ("services/api/README.md", "services/api/handler.py", "services/api/tests/t.py"):
        repo.write(rel, "ignored by src")
        assert repo.checksums() == before, rel
    for rel in ("services/api/src/deep/x.py", "services/api/template.yaml",
                "services/api/db/schema.sql", "services/api/schema.sql"):
        repo.write(rel, "counts")
        after = repo.checksums()
        assert after != before, rel
        before = after


def test_glob_rules() -> None:
    paths = sorted(["a.py", "src/a.py", "src/b/c.py", "srcx/a.py", "template.yaml", "d/e.sql",
                    "e.sql", "x/y/z.txt"])
    assert select_files(paths, ["src"]) == ["src/a.py", "src/b/c.py"]
    assert select_files(paths, ["./src/"]) == ["src/a.py", "src/b/c.py"]
    assert select_files(paths, ["*.py"]) == ["a.py"]
    assert select_files(paths, ["**/*.py"]) == ["a.py", "src/a.py", "src/b/c.py", "srcx/a.py"]
    assert select_files(paths, ["src/**"]) == ["src/a.py", "src/b/c.py"]
    assert select_files(paths, ["x/*"]) == ["x/y/z.txt"]  # a folder matched takes its files
    assert select_files(paths, ["?.sql", "t[a-e]mplate.yaml"]) == ["e.sql", "template.yaml"]
    assert select_files(paths, ["nothing"]) == []
    assert select_files(paths, ["."]) == select_files(paths, ["**"]) == paths
    assert select_files(paths, ["x/y/[!a-y].txt", "src/*/c.py"]) == ["src/b/c.py", "x/y/z.txt"]


def test_config_and_deployer_version_are_inputs(tmp_path, monkeypatch) -> None:
    repo = Repo.create(tmp_path / "r", {"api": [], "web": ["api"]})
    before = repo.checksums()
    text = (repo.root / "services/api/mila.toml").read_text()
    repo.write("services/api/mila.toml", "# a comment changes nothing\n" + text)
    assert repo.checksums() == before
    repo.write("services/api/mila.toml", text + 'parameters = { Stage = "x" }\n')
    assert changed(before, repo.checksums()) == {"api", "web"}
    repo.write("services/api/mila.toml", text)
    monkeypatch.setattr(mila_hashtest, "VERSION", "2")
    assert changed(before, repo.checksums()) == {"api", "web"}


def test_names_select_a_workspace_and_what_it_needs(repo) -> None:
    project = repo.project()
    all_ = workspace_checksums(project)
    some = workspace_checksums(project, ["edge"])
    assert set(some) == {"edge", "api", "core"}
    assert {n: c.checksum for n, c in some.items()} == {n: all_[n].checksum for n in some}
    with pytest.raises(Exception, match="unknown workspace: nope"):
        workspace_checksums(project, ["nope"])


def test_manifest_is_json_with_no_absolute_path(repo) -> None:
    c = workspace_checksums(repo.project())["api"]
    text = json.dumps(c.manifest)
    assert str(repo.root) not in text and str(repo.root.parent) not in text
    assert c.manifest["checksum"] == c.checksum
    parts = c.manifest["parts"]
    assert set(parts["files"]) == {"handler.py"}  # mila.toml is in parts["config"]
    assert parts["dependencies"] == {"core": workspace_checksums(repo.project())["core"].checksum}
    assert parts["deployer"] == {"name": "hashtest", "version": "1"}


# --------------------------------------------------------------------------- deploy checksums


def test_deploy_checksum_without_inputs_is_the_base(repo) -> None:
    project = repo.project()
    base = workspace_checksums(project)["api"]
    assert deploy_checksum(project, base, project.graph["api"], "dev", "eu-west-1").checksum \
        == base.checksum


def test_inputs_are_folded_in_hashed_and_named_by_plugin(repo, monkeypatch) -> None:
    secret = "s3cr3t-value-123"
    monkeypatch.setattr(mila_hashtest, "INPUTS",
                        lambda s, e, r: {"Token": secret, "Region": r} if s == "api" else None)
    project = repo.project()
    base = workspace_checksums(project)
    api, web = project.graph["api"], project.graph["web"]
    eu = deploy_checksum(project, base["api"], api, "dev", "eu-west-1")
    us = deploy_checksum(project, base["api"], api, "dev", "us-east-1")
    assert eu.checksum != base["api"].checksum and eu.checksum != us.checksum
    assert deploy_checksum(project, base["web"], web, "dev", "eu-west-1").checksum \
        == base["web"].checksum
    text = json.dumps(eu.manifest)  # as state backends store it
    assert secret not in text
    assert set(eu.manifest["inputs"]) == {"mila_hashtest:Token", "mila_hashtest:Region"}
    assert explain(eu.manifest, us.manifest) == ["input mila_hashtest:Region changed"]
    # same inputs, same checksum: a second computation agrees
    again = deploy_checksum(project, base["api"], api, "dev", "eu-west-1")
    assert again.checksum == eu.checksum


# --------------------------------------------------------------------------- explanations


def test_explain_says_what_changed(tmp_path, monkeypatch) -> None:
    repo = Repo.create(tmp_path / "r", {"api": ["core"]}, {"core": []}, root_src=["uv.lock"])
    repo.write("services/api/a.py", "a")
    repo.write("services/api/b.py", "b")
    repo.write("uv.lock", "1")
    old = workspace_checksums(repo.project())["api"]
    assert explain(old.manifest, old.manifest) == []
    assert explain(None, old.manifest) == ["no earlier manifest to compare with"]

    repo.write("services/api/a.py", "a2")
    repo.rename("services/api/b.py", "services/api/lib/b.py")
    repo.write("services/api/c.py", "c")
    repo.remove("services/api/handler.py")
    repo.write("packages/core/core.py", "2")
    repo.write("uv.lock", "2")
    text = (repo.root / "services/api/mila.toml").read_text()
    repo.write("services/api/mila.toml", text + "timeout = 5\n")
    monkeypatch.setattr(mila_hashtest, "VERSION", "9")
    new = workspace_checksums(repo.project())["api"]
    lines = explain(old.manifest, new.manifest)
    assert lines == [
        "added services/api/c.py",
        "removed services/api/handler.py",
        "modified services/api/a.py",
        "renamed services/api/b.py → services/api/lib/b.py",
        "modified uv.lock (root src)",
        "dependency core changed",
        "config changed: service.timeout",
        "deployer version changed: hashtest 1 → 9",
    ]


def test_explain_limits_long_file_lists() -> None:
    old = {"format": 1, "checksum": "a", "path": "s", "parts": {"files": {}}}
    new = {"format": 1, "checksum": "b", "path": "s",
           "parts": {"files": {f"f{i:03}": str(i) for i in range(30)}}}
    lines = explain(old, new, limit=5)
    assert lines[:5] == [f"added s/f{i:03}" for i in range(5)]
    assert lines[5] == "… and 25 more added files"
    assert explain({**old, "format": 0}, new) == [
        "checksum format changed (0 → 1): mila was upgraded"]


def test_checksum_is_a_frozen_record() -> None:
    c = Checksum("a", "b" * 64, {})
    with pytest.raises(AttributeError):
        c.checksum = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- properties

OPERATIONS = ("edit", "add", "delete", "rename", "chmod-free-touch")
WORKSPACES = sorted({*GRAPH["services"], *GRAPH["packages"]})


def _folder(name: str) -> str:
    return f"services/{name}" if name in GRAPH["services"] else f"packages/{name}"


def _main_file(name: str) -> str:
    return f"{_folder(name)}/{'handler' if name in GRAPH['services'] else name}.py"


def apply(repo: Repo, op: str, name: str, content: str) -> None:
    main = _main_file(name)
    if op == "edit":
        repo.write(main, (repo.root / main).read_text() + content + "\n")
    elif op == "add":
        repo.write(f"{_folder(name)}/sub dir/new file.txt", content)
    elif op == "delete":
        repo.remove(main)
    elif op == "rename":
        repo.rename(main, f"{_folder(name)}/renamed.py")
    else:
        (repo.root / main).touch()


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(OPERATIONS), name=st.sampled_from(WORKSPACES),
       content=st.text(min_size=1, max_size=40), hasher=st.sampled_from(["git", "fs"]),
       then=st.sampled_from(["dirty", "staged", "committed"]))
def test_a_change_reaches_its_workspace_and_dependents_only(op, name, content, hasher,
                                                            then) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repo.create(Path(tmp) / "repo", GRAPH["services"], GRAPH["packages"],
                           git=hasher == "git")
        before = repo.checksums()
        apply(repo, op, name, content)
        after = repo.checksums()
        expected = set() if op == "chmod-free-touch" else dependents(name)
        assert changed(before, after) == expected
        if hasher == "git" and then != "dirty":
            # staged or committed, the same content gives the same checksums
            repo.git("add", "-A")
            assert repo.checksums() == after
            if then == "committed":
                repo.git("commit", "-q", "--allow-empty", "-m", "change")
                assert repo.checksums() == after
        if hasher == "git":
            # the working tree now, without git, hashes the same
            shutil.rmtree(repo.root / ".git")
            assert repo.checksums() == after


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(files=st.dictionaries(
    st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6}){0,2}\.(py|txt|log)", fullmatch=True),
    st.binary(max_size=300), min_size=1, max_size=12),
    ignore=st.sampled_from(["", "*.log\n", "*.txt\n!keep.txt\n", "a*/\n"]))
def test_git_and_fs_hashers_agree(files, ignore) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repo.create(Path(tmp) / "repo", {"api": [], "web": ["api"]}, {"core": []})
        repo.write("services/api/.gitignore", ignore)
        for rel, data in files.items():
            if any(other.startswith(rel + "/") for other in files):
                continue  # a file and a folder of the same name cannot both exist
            repo.write(f"services/api/{rel}", data)
            repo.write(f"packages/core/{rel}", data)
        half = sorted(files)[: len(files) // 2]
        repo.git("add", "-A")
        repo.git("commit", "-q", "-m", "x")
        for rel in half:  # some committed, some untracked, some modified
            path = repo.root / "services/api" / rel
            if path.is_file():
                path.write_bytes(path.read_bytes() + b"!")
        with_git = repo.checksums()
        shutil.rmtree(repo.root / ".git")
        assert repo.checksums() == with_git
