"""A plugin and a repository builder for the checksum and hasher tests.

Loaded with ``MILA_PLUGINS=mila_hashtest`` (``tests/support`` is on sys.path). It registers the
deployer ``hashtest`` (its version is :data:`VERSION`, so a test can "upgrade" it) and answers
``mila_checksum_inputs`` with :data:`INPUTS` (a function of service, environment and region).
It deploys nothing: these tests only hash. :class:`Repo` writes a monorepo of services and
packages into a folder, optionally as a git repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from mila import hookimpl
from mila.protocols import DeployerType

VERSION = "1"
PLUGINS = "mila_hashtest"


def no_inputs(service: str, environment: str, region: str) -> Mapping[str, str] | None:
    return None


#: (service name, environment, region) -> inputs; tests monkeypatch it
INPUTS: Callable[[str, str, str], Mapping[str, str] | None] = no_inputs


class NoDeployer:
    name = "hashtest"
    version = VERSION

    def deploy(self, action, context):  # pragma: no cover - never called
        raise NotImplementedError

    def destroy(self, action, context):  # pragma: no cover - never called
        raise NotImplementedError


@hookimpl
def mila_deployers() -> list[DeployerType]:
    return [DeployerType("hashtest", create=lambda config: NoDeployer(), version=VERSION)]


@hookimpl
def mila_checksum_inputs(service, environment, region):
    return INPUTS(service.name, environment, region)


def no_opinion(service: str, region: str) -> str | None:
    return None


#: (service name, region) -> "deploy" | "no_changes" | None; tests monkeypatch it
DETECT: Callable[[str, str], str | None] = no_opinion


@hookimpl
def mila_detect_change(service, environment, region, current, previous):
    return DETECT(service.name, region)


ROOT_TOML = """\
{src}[project]
name = "shop"
default_region = "eu-west-1"
workspaces = ["packages/*", "services/*"]
[state]
backend = "local"
"""

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


class Repo:
    """A monorepo on disk: ``packages/<name>`` and ``services/<name>`` with ``depends_on``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, root: Path, services: Mapping[str, Iterable[str]],
               packages: Mapping[str, Iterable[str]] = {}, root_src: Iterable[str] = (),
               service_toml: Mapping[str, str] = {}, git: bool = True) -> Repo:
        repo = cls(root)
        src = list(root_src)
        repo.write("mila.toml", ROOT_TOML.format(src=f"src = {src!r}\n".replace("'", '"')
                                                 if src else ""))
        (root / "packages").mkdir(parents=True, exist_ok=True)
        (root / "services").mkdir(parents=True, exist_ok=True)
        for name, deps in packages.items():
            repo.write(f"packages/{name}/mila.toml",
                       f"[package]\ndepends_on = {_toml_list(deps)}\n")
            repo.write(f"packages/{name}/{name}.py", f"NAME = {name!r}\n")
        for name, deps in services.items():
            repo.write(f"services/{name}/mila.toml",
                       f'[service]\ndeployer = "hashtest"\ndepends_on = {_toml_list(deps)}\n'
                       + service_toml.get(name, ""))
            repo.write(f"services/{name}/handler.py", f"def handler(e, c):\n    return {name!r}\n")
        if git:
            repo.git("init", "-q", "-b", "main")
            repo.commit()
        return repo

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def remove(self, rel: str) -> None:
        path = self.root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    def rename(self, old: str, new: str) -> None:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        (self.root / old).rename(self.root / new)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True,
                              text=True, env={**os.environ, **GIT_ENV}).stdout

    def commit(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def checksums(self, names: Iterable[str] | None = None) -> dict[str, str]:
        from mila.checksums import workspace_checksums

        return {n: c.checksum for n, c in workspace_checksums(self.project(), names).items()}

    def project(self):
        from mila.project import load_project

        return load_project(self.root, environ={"MILA_PLUGINS": PLUGINS})


def _toml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> set[str]:
    return {n for n in set(before) | set(after) if before.get(n) != after.get(n)}
