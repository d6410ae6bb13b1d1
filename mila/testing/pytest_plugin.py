"""pytest plugin (entry point ``pytest11``): fixtures for mila and third-party plugin tests.

Imports nothing heavy at import time, so installing mila never slows an unrelated test suite;
without moto installed, the sandbox fixtures skip the tests that ask for them (with moto at a
version the sandbox was not written for, they fail: a silent skip would hide it).

Fixtures:

``mila_project`` (function)
    A :class:`mila.testing.project.ProjectFactory` rooted in a fresh temporary folder
    (``tmp_path / "repo"``): write a monorepo with ``root_config``, ``service``, ``package``,
    ``write``, then ``commit_all``.
``run_mila`` (function)
    ``run_mila(*args, input=None, env=None)`` runs ``mila -C <mila_project.root> ARGS``
    in-process and returns a :class:`mila.testing.project.MilaResult` (``exit_code``,
    ``stdout``, ``stderr``, ``output``, ``json``).
``mila_sandbox_server`` (session)
    The mila sandbox (serialised, faithful moto) in a thread on a free 127.0.0.1 port. A
    :class:`mila.testing.sandbox.SandboxHandle`: ``.endpoint_url``, ``.account_id``,
    ``.region``, ``.reset()``, ``.environment()``, ``.client(service)``.
``sandbox`` (function)
    The same handle, emptied before the test, with the process environment pointed at it
    (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID=testing``, ``AWS_SECRET_ACCESS_KEY=testing``,
    ``AWS_DEFAULT_REGION=eu-west-1``, ``MILA_SANDBOX=1``; profiles, session tokens and
    per-service endpoints removed) for the test's duration.
``plain_moto_server`` (session)
    Unpatched moto in a child process (reset it yourself with ``.reset()``): the "fails on plain
    moto" half of a fidelity test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mila.testing.project import MilaResult, ProjectFactory
    from mila.testing.sandbox import SandboxHandle


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


def _require_sandbox() -> None:
    try:
        from mila_sandbox.versions import SandboxUnavailable, check_versions
    except ImportError:  # pragma: no cover - mila installed without its built-in plugins
        pytest.skip("the mila sandbox plugin is not installed")
    try:
        check_versions()
    except SandboxUnavailable as exc:
        if not exc.missing:  # installed, but not the versions the fixes were written for
            pytest.fail(f"the mila sandbox cannot run: {exc}", pytrace=False)
        pytest.skip(f"the mila sandbox is unavailable: {exc}")


@pytest.fixture(scope="session")
def mila_sandbox_server() -> Iterator[SandboxHandle]:
    """The mila sandbox for the whole session, in a thread on a free loopback port."""
    _require_sandbox()
    from mila.testing.sandbox import running_sandbox

    with running_sandbox() as handle:
        yield handle


@pytest.fixture
def sandbox(mila_sandbox_server: SandboxHandle,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """The sandbox, emptied, with the environment pointed at it for this test."""
    from mila.testing.sandbox import forget_aws_sessions, point_environment_at

    mila_sandbox_server.reset()
    point_environment_at(mila_sandbox_server, setenv=monkeypatch.setenv,
                         delenv=monkeypatch.delenv)
    forget_aws_sessions()
    yield mila_sandbox_server
    forget_aws_sessions()


@pytest.fixture(scope="session")
def plain_moto_server() -> Iterator[SandboxHandle]:
    """Unpatched moto in a child process, to show what the sandbox fixes."""
    _require_sandbox()
    from mila.testing.sandbox import running_plain_moto

    with running_plain_moto() as handle:
        yield handle
