"""mila's pytester: build a monorepo on disk and run the real CLI on it.

Published for plugin authors as pytest ships ``pytester`` to its own: the fixtures
``mila_project`` (a :class:`ProjectFactory` rooted in a fresh temporary folder) and ``run_mila``
(runs ``mila -C <root> ARGS`` in-process and returns a :class:`MilaResult`) come with mila's
pytest plugin, so a plugin's tests need no set-up of their own::

    def test_my_deployer(mila_project, run_mila):
        mila_project.root_config(backend="local")
        mila_project.service("api", 'deployer = "zip"\\n', files={"handler.py": "..."})
        mila_project.commit_all()
        assert run_mila("envs", "create", "dev").exit_code == 0
        result = run_mila("deploy", "-e", "dev", "--no-prompt")
        assert result.exit_code == 0, result.output

Public API (see ``docs/plugins.md``, "Testing a plugin"): :class:`ProjectFactory`,
:class:`MilaResult`, :func:`invoke`.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MilaResult", "ProjectFactory", "invoke"]

ROOT_TOML = """\
[project]
name = "{name}"
default_region = "eu-west-1"
workspaces = {workspaces}
[state]
backend = "{backend}"
"""


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


class ProjectFactory:
    """Writes a mila project under ``root``; ``write("a/b.txt", "x")`` creates the folders.

    Text passed to every writer is dedented, so tests can indent it with the code.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, content: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
        return path

    def root_config(self, name: str = "shop", workspaces: list[str] | None = None,
                    backend: str = "local", extra: str = "") -> Path:
        """The root ``mila.toml``: project ``name``, ``workspaces`` globs (default
        ``packages/*`` and ``services/*``), ``[state] backend``, then ``extra`` TOML."""
        ws = workspaces if workspaces is not None else ["packages/*", "services/*"]
        text = ROOT_TOML.format(name=name, workspaces=_toml_list(ws), backend=backend)
        for pattern in ws:  # the base folders of the globs exist, as in a real repository
            if pattern.endswith("/*"):
                (self.root / pattern[:-2]).mkdir(parents=True, exist_ok=True)
        return self.write("mila.toml", text + textwrap.dedent(extra))

    def service(self, name: str, body: str = "", files: Mapping[str, str] | None = None,
                folder: str = "services") -> Path:
        """A service folder with a ``mila.toml`` whose ``[service]`` table is ``body``."""
        self.write(f"{folder}/{name}/mila.toml", "[service]\n" + textwrap.dedent(body))
        for rel, content in (files or {"handler.py": f"# {name}\n"}).items():
            self.write(f"{folder}/{name}/{rel}", content)
        return self.root / folder / name

    def package(self, name: str, files: Mapping[str, str] | None = None,
                deps: list[str] | None = None) -> Path:
        """A Python workspace package (``pyproject.toml`` with ``dependencies = deps``)."""
        self.write(f"packages/{name}/pyproject.toml",
                   f'[project]\nname = "{name}"\nversion = "0.1"\n'
                   f"dependencies = {_toml_list(deps or [])}\n")
        for rel, content in (files or {"__init__.py": f"# {name}\n"}).items():
            self.write(f"packages/{name}/{rel}", content)
        return self.root / "packages" / name

    def git(self, *args: str) -> str:
        """Run git in the project (a fixed author, so commits need no global identity)."""
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True,
                              text=True, env=env).stdout

    def commit_all(self, message: str = "commit") -> None:
        """``git init`` (first time) and commit everything: the ``git`` hasher needs a repository."""
        if not (self.root / ".git").exists():
            self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, "--allow-empty")


class MilaResult:
    """What one CLI run gave: ``exit_code``, ``stdout``, ``stderr``, ``output`` (both, as a
    terminal shows them) and :attr:`json` (stdout parsed, for ``--json`` commands). Other
    attributes are click's :class:`~click.testing.Result`'s (``exception``, ``exc_info``)."""

    def __init__(self, result: Any) -> None:
        self._result = result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    @property
    def exit_code(self) -> int:
        return int(self._result.exit_code)

    @property
    def stdout(self) -> str:
        return str(self._result.stdout)

    @property
    def stderr(self) -> str:
        return str(self._result.stderr)

    @property
    def output(self) -> str:
        return str(self._result.output)

    @property
    def json(self) -> Any:
        """stdout parsed as JSON; an :class:`AssertionError` showing the output if it is not."""
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {self.exit_code}):\n{self.output}") from None

    def __repr__(self) -> str:
        return f"<MilaResult exit_code={self.exit_code}>"


def invoke(root: Path, *args: str, input: str | None = None,
           env: Mapping[str, str | None] | None = None) -> MilaResult:
    """Run ``mila -C root ARGS`` in this process (click's runner) and return its result.

    Exceptions other than mila's own errors propagate (a traceback is a bug the test should
    show); ``env`` sets (or, with ``None``, unsets) variables for the run only.
    """
    from click.testing import CliRunner

    from mila.cli import cli

    return MilaResult(CliRunner().invoke(cli, ["-C", str(root), *args], input=input, env=env,
                                         catch_exceptions=False))
