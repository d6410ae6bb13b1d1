"""Checksums are a contract: remote state stores them, and any change to their values would
redeploy every service. These pin the values (and the manifests explaining them) of a graph
that touches every part of the fold; a faster fold must give the same bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mila.checksums import canonical_json, compute_checksums
from mila.config import ProjectConfig, StateConfig
from mila.model import Workspace, frozen_mapping
from mila.workspace import WorkspaceGraph

BLOB = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"


def _digest(i: int) -> str:
    return hashlib.sha1(str(i).encode()).hexdigest()


def _graph() -> WorkspaceGraph:
    ws = [
        Workspace("core", "packages/core", "package"),
        Workspace("ui", "packages/ui", "package", depends_on=("core",), src=("src/*.js", "README")),
        Workspace("api", "services/api", "service", depends_on=("core",), deployer="d",
                  settings=frozen_mapping({"deployer": "d", "memory": 512,
                                           "tags": {"b": "2", "a": "é"}})),
        Workspace("web", "services/web", "service", depends_on=("ui",), deployer="d",
                  src=("app", "*.toml")),
        Workspace("edge", "services/edge", "service", depends_on=("api",), deployer="d"),
    ]
    return WorkspaceGraph(frozen_mapping({w.name: w for w in sorted(ws, key=lambda w: w.name)}))


def _digests() -> dict[str, str]:
    paths = ["uv.lock", "README.md", "packages/core/a.py", "packages/core/mila.toml",
             "packages/core/sub/b.py", "packages/ui/src/x.js", "packages/ui/src/deep/y.js",
             "packages/ui/README", "packages/ui/other.txt", "services/api/handler.py",
             "services/api/mila.toml", "services/api/envs/.env", "services/api/envs/.env.prod",
             "services/api/envs/.envrc", "services/api/run.sh", "services/api/caf\udce9.py",
             "services/api-two/x.py", "services/web/app/main.py", "services/web/pyproject.toml",
             "services/web/lib/skip.py", "services/edge/index.ts", "services/edge/envs/x"]
    out = {p: _digest(i) for i, p in enumerate(paths)}
    out["services/api/run.sh"] = "100755:" + BLOB
    return out


#: (checksum, sha256 of the canonical manifest), computed by the fold as of issue 18
PINNED = {
    "api": ("4c7feaf44a4ffe29b65ce89b893479dd0ccc9b4e3c2255ca659907d62a796978",
             "81c21d33f3543ac98c3ad79ded4ca4354879e7796997756d28b2b20602a1e607"),
    "core": ("b005c788388617df2bb711e19dcfd0e75366da716647347e77cddf107860d738",
              "961c51dfecaf75289f4361aa1e9a65e255bc8e6a6bf971acf8f363080ad36ecc"),
    "edge": ("2df081d15543f25fb453accce301f7d6a2bf550fa4c28e4582f515ba4578e0dd",
              "c7bc1aada62976e4b350e2bdca80d1d46e0d3c784c31a160aa233f430977f298"),
    "ui": ("ac71edba21f5fbb3ee5bd1045eadd5c8a0968356411ca39637c9e6dfda430d0e",
            "454af594def79dd07d3604809d347bfef57514002a52ed7b838b87b6f029461b"),
    "web": ("092dea3b0df6c818ae07c68e0eb52f252ec7e73abfdff69073c1496d2104bd9d",
             "5272852ac90482b89639a7534d9139dfd7f8bc1b671789693cd56d63db792267"),
}


def test_checksum_values_are_pinned() -> None:
    config = ProjectConfig(root=Path("/nowhere"), config_file="mila.toml", name="shop",
                           default_region="eu-west-1", state=StateConfig("local"),
                           workspaces=("packages/*", "services/*"), src=("uv.lock",),
                           artifacts_bucket="bucket")
    packaged = {"edge": {"services/edge/index.ts": _digest(20), "packages/core/a.py": _digest(2),
                         "vendor/lib.so": BLOB}}
    out = compute_checksums(_graph(), _digests(), config, lambda name: f"{name}-1.2",
                            packaged=packaged)
    got = {n: (c.checksum, hashlib.sha256(canonical_json(dict(c.manifest))).hexdigest())
           for n, c in out.items()}
    assert got == PINNED
    api = out["api"].manifest["parts"]["files"]
    assert sorted(api) == ["caf\udce9.py", "envs/.envrc", "handler.py", "run.sh"]
    assert sorted(out["web"].manifest["parts"]["files"]) == ["app/main.py", "pyproject.toml"]
    assert sorted(out["ui"].manifest["parts"]["files"]) == ["README", "src/x.js"]


class _FailingHasher:
    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def file_digests(self, root: Path) -> dict[str, str]:
        raise self.error


def test_the_hasher_runs_alongside_discovery_and_errors_keep_their_order(project) -> None:
    """The hasher runs on a thread while workspaces are discovered: its error is raised as it
    was; a configuration error found meanwhile wins over it, as when they ran in turn."""
    from mila.checksums import workspace_checksums
    from mila.errors import ConfigError, MilaError
    from mila.project import load_project

    project.root_config()
    project.package("core")
    p = load_project(project.root)
    assert set(workspace_checksums(p)) == {"core"}  # the thread's digests are used
    p = load_project(project.root)
    p.__dict__["hasher"] = _FailingHasher(MilaError("git broke"))
    with pytest.raises(MilaError, match="git broke"):
        workspace_checksums(p)
    project.write("packages/core/mila.toml", "[package]\nbad = 1\n")
    p = load_project(project.root)
    p.__dict__["hasher"] = _FailingHasher(MilaError("git broke"))
    with pytest.raises(ConfigError, match="unknown key 'bad'"):
        workspace_checksums(p)


@pytest.mark.parametrize("value", [
    {}, {"b": 1, "a": [True, None, "x", ("t", 2)], "c": {"z": {}, "y": []}},
    {"when": __import__("datetime").date(2024, 1, 2), "f": 1.5, "n": [1.0]},
])
def test_settings_are_copied_as_their_json_round_trip(value) -> None:
    import json

    from mila.checksums import _as_parsed_json

    expected = json.loads(canonical_json(value))
    got = _as_parsed_json(value)
    assert got == expected and json.dumps(got) == json.dumps(expected)  # key order too
