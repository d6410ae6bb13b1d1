"""Shared fixtures: build small mila projects in a temporary folder and run the CLI on them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mila.cli import cli

# tests/support holds plugin modules that tests load through MILA_PLUGINS
sys.path.insert(0, str(Path(__file__).parent / "support"))

# Never let botocore look for credentials on the EC2 metadata address (not loopback) in tests.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

ROOT_TOML = """\
[project]
name = "{name}"
default_region = "eu-west-1"
workspaces = {workspaces}
[state]
backend = "{backend}"
"""


class ProjectFactory:
    """Writes files under a temporary root. ``write("a/b.txt", "x")`` creates folders."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, content: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
        return path

    def root_config(self, name: str = "shop", workspaces: list[str] | None = None,
                    backend: str = "local", extra: str = "") -> Path:
        ws = workspaces if workspaces is not None else ["packages/*", "services/*"]
        text = ROOT_TOML.format(name=name, workspaces=str(ws).replace("'", '"'), backend=backend)
        for pattern in ws:  # the base folders of the globs exist, as in a real repository
            if pattern.endswith("/*"):
                (self.root / pattern[:-2]).mkdir(parents=True, exist_ok=True)
        return self.write("mila.toml", text + textwrap.dedent(extra))

    def service(self, name: str, body: str = "", files: dict[str, str] | None = None,
                folder: str = "services") -> Path:
        self.write(f"{folder}/{name}/mila.toml", "[service]\n" + textwrap.dedent(body))
        for rel, content in (files or {"handler.py": f"# {name}\n"}).items():
            self.write(f"{folder}/{name}/{rel}", content)
        return self.root / folder / name

    def package(self, name: str, files: dict[str, str] | None = None, deps: list[str] | None = None) -> Path:
        deps_toml = str(deps or []).replace("'", '"')
        self.write(f"packages/{name}/pyproject.toml",
                   f'[project]\nname = "{name}"\nversion = "0.1"\ndependencies = {deps_toml}\n')
        for rel, content in (files or {"__init__.py": f"# {name}\n"}).items():
            self.write(f"packages/{name}/{rel}", content)
        return self.root / "packages" / name

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True,
                              text=True, env=env).stdout

    def commit_all(self, message: str = "commit") -> None:
        if not (self.root / ".git").exists():
            self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, "--allow-empty")


@pytest.fixture
def project(tmp_path: Path) -> ProjectFactory:
    return ProjectFactory(tmp_path / "repo")


@pytest.fixture
def run_mila(project: ProjectFactory) -> Callable[..., Result]:
    """Run the CLI in-process (click's runner) with ``-C <project root>``."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, ["-C", str(project.root), *args], input=input, env=env,
                                  catch_exceptions=False)

    return run
