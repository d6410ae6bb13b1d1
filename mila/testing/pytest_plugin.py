"""pytest plugin (entry point ``pytest11``): fixtures for mila and third-party plugin tests.

Imports nothing heavy at import time, so installing mila never slows an unrelated test suite.
The sandbox's fixtures (``sandbox``, ``mila_sandbox_server``, ``plain_moto_server``) come with
the sandbox plugin's own pytest plugin, :mod:`mila_sandbox.pytest_plugin` (the core imports no
plugin).

Fixtures:

``mila_project`` (function)
    A :class:`mila.testing.project.ProjectFactory` rooted in a fresh temporary folder
    (``tmp_path / "repo"``): write a monorepo with ``root_config``, ``service``, ``package``,
    ``write``, then ``commit_all``.
``run_mila`` (function)
    ``run_mila(*args, input=None, env=None)`` runs ``mila -C <mila_project.root> ARGS``
    in-process and returns a :class:`mila.testing.project.MilaResult` (``exit_code``,
    ``stdout``, ``stderr``, ``output``, ``json``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mila.testing.project import MilaResult, ProjectFactory


@pytest.fixture
def mila_project(tmp_path: Path) -> ProjectFactory:
    """A project builder rooted in a fresh temporary folder (nothing written yet)."""
    from mila.testing.project import ProjectFactory

    return ProjectFactory(tmp_path / "repo")


@pytest.fixture
def run_mila(mila_project: ProjectFactory) -> Callable[..., MilaResult]:
    """Run the mila CLI in-process on ``mila_project`` (``-C`` its root)."""
    from mila.testing.project import invoke

    def run(*args: str, input: str | None = None,
            env: dict[str, str | None] | None = None) -> MilaResult:
        return invoke(mila_project.root, *args, input=input, env=env)

    return run
