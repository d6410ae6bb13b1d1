"""pytest plugin of the sandbox (entry point ``pytest11``, ``mila_sandbox``): its fixtures.

Imports nothing heavy at import time (no moto, no boto3), so installing mila never slows an
unrelated test suite; without moto installed, the fixtures skip the tests that ask for them
(with moto at a version the sandbox was not written for, they fail: a silent skip would hide
it). The handles they give are :class:`mila_sandbox.testing.SandboxHandle`.

Fixtures:

``mila_sandbox_server`` (session)
    The mila sandbox (serialised, faithful moto) in a thread on a free 127.0.0.1 port:
    ``.endpoint_url``, ``.account_id``, ``.region``, ``.reset()``, ``.environment()``,
    ``.client(service)``.
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

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mila_sandbox.testing import SandboxHandle


def _require_sandbox() -> None:
    """Skip the test when moto is not installed (``pip install "mila[sandbox]"``); fail it when
    moto is at a version the sandbox was not written for."""
    from mila_sandbox.versions import SandboxUnavailable, check_versions

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
    from mila_sandbox.testing import running_sandbox

    with running_sandbox() as handle:
        yield handle


@pytest.fixture
def sandbox(mila_sandbox_server: SandboxHandle,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """The sandbox, emptied, with the environment pointed at it for this test."""
    from mila_sandbox.testing import forget_aws_sessions, point_environment_at

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
    from mila_sandbox.testing import running_plain_moto

    with running_plain_moto() as handle:
        yield handle
