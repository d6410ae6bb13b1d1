"""Hash = ship: every file the ``sam``/``cloudformation`` packagers read is in the checksum of
exactly the services that ship it — wherever it lies in the repository, git-ignored or not —
and a packaged path outside the repository is refused before anything else happens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mila_cloudformation.inputs import packaged_files

from mila.checksums import workspace_checksums
from mila.errors import ConfigError
from mila.explain import explain
from mila.project import load_project

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}

SAM = "Transform: AWS::Serverless-2016-10-31\n"
FILES = {
    "mila.toml": '[project]\nname = "p"\ndefault_region = "eu-west-1"\n'
                 'workspaces = ["services/*"]\n[state]\nbackend = "local"\n',
    ".gitignore": "vendor/\n__pycache__/\n",
    # s1: a CodeUri in a folder of the repository that is no workspace
    "services/s1/template.yaml": SAM + "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
                                 "    Properties: {CodeUri: ../../shared/lib, Handler: a.h, "
                                 "Runtime: python3.12}\n",
    "shared/lib/a.py": "A = 1\n",
    "shared/lib/sub/b.py": "B = 1\n",
    "shared/lib/__pycache__/a.cpython-311.pyc": "not packaged",
    # s2: its own code, and a layer whose ContentUri is elsewhere
    "services/s2/template.yaml": SAM + "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
                                 "    Properties: {CodeUri: src, Handler: h.h, Runtime: python3.12}\n"
                                 "  L:\n    Type: AWS::Serverless::LayerVersion\n"
                                 "    Properties: {ContentUri: ../../shared/layer}\n",
    "services/s2/src/h.py": "H = 1\n",
    "shared/layer/python/l.py": "L = 1\n",
    # s3: a nested stack whose template packages code of its own
    "services/s3/template.yaml": "Resources:\n  N:\n    Type: AWS::CloudFormation::Stack\n"
                                 "    Properties: {TemplateURL: ../../shared/nested.yaml}\n",
    "shared/nested.yaml": "Resources:\n  F:\n    Type: AWS::Lambda::Function\n"
                          "    Properties: {Code: child, Handler: c.h, Runtime: python3.12, "
                          "Role: r}\n",
    "shared/child/c.py": "C = 1\n",
    # s4: an AWS::Include elsewhere, and Lambda Code from a git-ignored (vendored) folder
    "services/s4/template.yaml": "Resources:\n  F:\n    Type: AWS::Lambda::Function\n"
                                 "    Properties: {Code: vendor, Handler: v.h, Runtime: python3.12, "
                                 "Role: r}\n"
                                 "  A:\n    Type: AWS::ApiGateway::RestApi\n    Properties:\n"
                                 "      Body:\n        Fn::Transform:\n"
                                 "          Name: AWS::Include\n"
                                 "          Parameters: {Location: ../../shared/api.yaml}\n",
    "services/s4/vendor/v.py": "V = 1\n",
    "shared/api.yaml": "openapi: 3.0.0\n",
    "shared/unused.py": "U = 1\n",
}
#: each file -> the services that ship it (the property under test)
SHIPPED_BY = {
    "shared/lib/a.py": {"s1"}, "shared/lib/sub/b.py": {"s1"},
    "services/s2/src/h.py": {"s2"}, "shared/layer/python/l.py": {"s2"},
    "shared/nested.yaml": {"s3"}, "shared/child/c.py": {"s3"},
    "services/s4/vendor/v.py": {"s4"}, "shared/api.yaml": {"s4"},
    "services/s1/template.yaml": {"s1"},
    "shared/lib/__pycache__/a.cpython-311.pyc": set(), "shared/unused.py": set(),
}


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def make_repo(root: Path, files: dict[str, str] = FILES) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "init")
    return root


def checksums(root: Path) -> dict[str, str]:
    project = load_project(root, environ={"MILA_PLUGINS": ""})
    return {n: c.checksum for n, c in workspace_checksums(project).items()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("inputs"))


def test_packaged_files_are_what_the_packager_reads(repo) -> None:
    project = load_project(repo, environ={"MILA_PLUGINS": ""})
    found = {ws.name: {p.relative_to(repo).as_posix() for p in packaged_files(ws, repo)}
             for ws in project.graph.services}
    for rel, services in SHIPPED_BY.items():
        if rel.endswith("template.yaml"):
            continue
        assert {s for s, files in found.items() if rel in files} == services, rel


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(rel=st.sampled_from(sorted(SHIPPED_BY)), text=st.text(min_size=1, max_size=20))
def test_editing_a_packaged_file_changes_exactly_the_services_that_ship_it(repo, rel, text) -> None:
    path = repo / rel
    before_text = path.read_text()
    before = checksums(repo)
    try:
        path.write_text(before_text + text)
        after = checksums(repo)
    finally:
        path.write_text(before_text)
    assert {n for n in before if before[n] != after[n]} == SHIPPED_BY[rel]


def test_an_ignored_packaged_file_is_hashed_by_content_and_explained(tmp_path) -> None:
    root = make_repo(tmp_path)
    project = load_project(root, environ={"MILA_PLUGINS": ""})
    old = workspace_checksums(project)["s4"]
    assert old.manifest["parts"]["packaged"]["services/s4/vendor/v.py"]
    (root / "services/s4/vendor/v.py").write_text("V = 2\n")
    new = workspace_checksums(load_project(root, environ={"MILA_PLUGINS": ""}))["s4"]
    assert new.checksum != old.checksum
    assert "modified services/s4/vendor/v.py (packaged)" in explain(old.manifest, new.manifest)
    os.chmod(root / "services/s4/vendor/v.py", 0o755)  # the zip records 0755: a change
    executable = workspace_checksums(load_project(root, environ={"MILA_PLUGINS": ""}))["s4"]
    assert executable.manifest["parts"]["packaged"]["services/s4/vendor/v.py"].startswith("100755:")
    assert executable.checksum != new.checksum


def test_the_packaged_part_holds_only_files_outside_the_service(repo) -> None:
    project = load_project(repo, environ={"MILA_PLUGINS": ""})
    parts = workspace_checksums(project, ["s3"])["s3"].manifest["parts"]
    assert set(parts["packaged"]) == {"shared/nested.yaml", "shared/child/c.py"}
    one = make_repo(repo.parent / "own", {
        "mila.toml": FILES["mila.toml"],
        "services/a/template.yaml": FILES["services/s2/template.yaml"].split("  L:")[0],
        "services/a/src/h.py": "H = 1\n"})
    parts = workspace_checksums(load_project(one, environ={"MILA_PLUGINS": ""}))["a"].manifest["parts"]
    assert "packaged" not in parts


def test_a_symlinked_folder_is_hashed_through_the_link(tmp_path) -> None:
    files = {k: v for k, v in FILES.items() if not k.startswith("services/") or k.startswith("services/s1")}
    files["services/s1/template.yaml"] = files["services/s1/template.yaml"].replace(
        "../../shared/lib", "src")
    root = make_repo(tmp_path, files)
    (root / "services/s1/src").mkdir()
    (root / "services/s1/src/lib").symlink_to("../../../shared/lib")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "link")
    before = checksums(root)
    (root / "shared/lib/a.py").write_text("A = 2\n")
    assert checksums(root)["s1"] != before["s1"]


def test_a_packaged_path_outside_the_repository_is_refused(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.py").write_text("X = 1\n")
    files = {"mila.toml": FILES["mila.toml"],
             "services/a/template.yaml": SAM + "Resources:\n  F:\n"
             "    Type: AWS::Serverless::Function\n"
             "    Properties: {CodeUri: ../../../outside, Handler: x.h, Runtime: python3.12}\n"}
    root = make_repo(tmp_path / "repo", files)
    with pytest.raises(ConfigError) as info:
        checksums(root)
    assert "F.CodeUri" in str(info.value) and "outside the project" in str(info.value)
    assert info.value.exit_code == 2
    result = subprocess.run([str(Path(sys.executable).parent / "mila"), "checksums"],
                            cwd=root, capture_output=True, text=True,
                            env={**os.environ, "MILA_PLUGINS": ""})
    assert result.returncode == 2, result.stderr
    assert "outside the project" in result.stderr and "Traceback" not in result.stderr


def test_a_local_node_modules_of_an_npm_build_is_no_input(tmp_path) -> None:
    """npm installs it in the build (npm pack leaves a local one out): machine-local, unhashed."""
    files = {"mila.toml": FILES["mila.toml"],
             "services/web/template.yaml": SAM + "Resources:\n  F:\n"
             "    Type: AWS::Serverless::Function\n"
             "    Properties: {CodeUri: src, Handler: app.h, Runtime: nodejs20.x}\n",
             "services/web/src/package.json": "{}",
             "services/web/src/app.js": "exports.h = 1\n",
             ".gitignore": "node_modules/\n"}
    root = make_repo(tmp_path, files)
    (root / "services/web/src/node_modules/ms").mkdir(parents=True)
    (root / "services/web/src/node_modules/ms/index.js").write_text("1")
    before = checksums(root)
    (root / "services/web/src/node_modules/ms/index.js").write_text("2")
    assert checksums(root) == before
    (root / "services/web/src/app.js").write_text("exports.h = 2\n")
    assert checksums(root) != before


def test_a_cached_scan_follows_template_edits(tmp_path) -> None:
    root = make_repo(tmp_path)
    project = load_project(root, environ={"MILA_PLUGINS": ""})
    ws = project.graph["s1"]
    first = packaged_files(ws, root)
    assert list((root / ".mila/cache/inputs").glob("*.json"))  # the scan is kept
    assert packaged_files(ws, root) == first  # and used
    template = root / "services/s1/template.yaml"
    template.write_text(template.read_text().replace("../../shared/lib", "../../shared/child"))
    rels = {p.relative_to(root).as_posix() for p in packaged_files(ws, root)}
    assert "shared/child/c.py" in rels and "shared/lib/a.py" not in rels
