"""Handles on moto servers for tests: the mila sandbox, and plain moto for comparison.

Used by the fixtures of :mod:`mila_sandbox.pytest_plugin` (``sandbox``, ``mila_sandbox_server``,
``plain_moto_server``); importable on its own (no moto, no boto3 import until a server is
started or a client made) for suites that manage servers themselves. Public, like the fixtures
(see ``docs/sandbox.md``, "In tests").
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mila_sandbox import ACCOUNT_ID as SANDBOX_ACCOUNT
from mila_sandbox.server import DEFAULT_REGION as SANDBOX_REGION
from mila_sandbox.server import free_port, post_json, wait_until_answering

__all__ = ["CLEARED_VARIABLES", "SANDBOX_ACCOUNT", "SANDBOX_REGION", "SandboxHandle",
           "forget_aws_sessions", "free_port", "point_environment_at", "running_plain_moto",
           "running_sandbox"]

#: Variables that could send boto3 elsewhere than the sandbox, or to other credentials.
CLEARED_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                     "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
                     "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                     "AWS_CREDENTIAL_EXPIRATION", "AWS_CA_BUNDLE")


@dataclass(frozen=True)
class SandboxHandle:
    """A running moto server: where it is, and how to empty it.

    ``environment()`` gives the variables that point boto3 (and mila) at it.
    """

    endpoint_url: str
    account_id: str = SANDBOX_ACCOUNT
    region: str = SANDBOX_REGION
    _reset: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    _clients: dict[tuple[str, str], object] = field(default_factory=dict, repr=False,
                                                     compare=False)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                          compare=False)

    def reset(self) -> None:
        """Empty every service (~20 ms)."""
        self._reset()

    def environment(self) -> dict[str, str]:
        """The variables ``mila sandbox`` prints, for this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": self.region,
                "MILA_SANDBOX": "1"}

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client talking to this server whatever the environment says (one per
        service and region, shared: botocore clients are thread-safe)."""
        key = (service, region or self.region)
        with self._clients_lock:
            if key not in self._clients:
                import boto3
                from botocore.config import Config

                # no retries: a local server does not throttle, and retrying plain moto's
                # HTTP 500s (what fidelity tests show) only costs seconds of back-off
                made = boto3.session.Session().client(
                    service, region_name=key[1], endpoint_url=self.endpoint_url,
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    config=Config(retries={"total_max_attempts": 1}))
                made.exceptions  # noqa: B018 - built lazily without a lock; build it now
                self._clients[key] = made
            return self._clients[key]

    def new_client(self, service: str, region: str | None = None, **config: Any) -> Any:
        """A client of its own; ``config`` goes to botocore's ``Config``
        (e.g. ``max_pool_connections``)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service, region_name=region or self.region, endpoint_url=self.endpoint_url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(**config) if config else None)


def point_environment_at(handle: SandboxHandle, env: MutableMapping[str, str] | None = None,
                         setenv: Callable[[str, str], None] | None = None,
                         delenv: Callable[[str], None] | None = None) -> None:
    """Point the AWS variables of ``env`` (default ``os.environ``) at ``handle``.

    ``setenv``/``delenv`` default to editing ``env`` directly; pass pytest's
    ``monkeypatch.setenv``/``monkeypatch.delenv`` to have the change undone after a test.
    """
    target = os.environ if env is None else env
    set_ = setenv or target.__setitem__
    del_ = delenv or (lambda name: target.pop(name, None))
    for name in [*CLEARED_VARIABLES,
                 *(n for n in target if n.startswith("AWS_ENDPOINT_URL_"))]:
        if name in target:
            del_(name)
    for name, value in handle.environment().items():
        set_(name, value)
    # no profile file can add a region, an endpoint or a credential process
    set_("AWS_CONFIG_FILE", os.devnull)
    set_("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    set_("AWS_EC2_METADATA_DISABLED", "true")


def forget_aws_sessions() -> None:
    """Drop ``mila_aws.session``'s per-process caches (sessions, clients, verified identity)."""
    session = sys.modules.get("mila_aws.session")
    if session is None:
        return
    reset = getattr(session, "reset_caches", None)
    if callable(reset):
        reset()
        return
    verified = getattr(session, "_verified", None)
    lock = getattr(session, "_verified_lock", None)
    if isinstance(verified, dict) and lock is not None:
        with lock:
            verified.clear()


@contextmanager
def running_sandbox(region: str = SANDBOX_REGION) -> Iterator[SandboxHandle]:
    """The sandbox in a thread of this process, on a free 127.0.0.1 port."""
    from mila_sandbox.server import SandboxServer

    server = SandboxServer("127.0.0.1", 0).start()
    try:
        yield SandboxHandle(server.endpoint_url, SANDBOX_ACCOUNT, region, server.reset)
    finally:
        server.stop()


@contextmanager
def running_plain_moto(region: str = SANDBOX_REGION) -> Iterator[SandboxHandle]:
    """Unpatched moto in a child process (moto's backends are per process, and the sandbox's
    fixes patch this one), for the "fails on plain moto" half of fidelity tests."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url, alive=lambda: proc.poll() is None)
        lock = threading.Lock()

        def reset() -> None:
            with lock:
                post_json(url, "/moto-api/reset")

        yield SandboxHandle(url, SANDBOX_ACCOUNT, region, reset)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
