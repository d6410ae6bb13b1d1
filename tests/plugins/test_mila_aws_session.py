"""The AWS session's guards: an unreachable endpoint is reported at once and by name; with
``MILA_SANDBOX`` set, no endpoint variable may point anywhere but loopback."""

from __future__ import annotations

import socket
import time

import pytest

from mila.errors import MilaError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def aws_env(monkeypatch, project):
    from mila_aws.session import reset_caches

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "MILA_SANDBOX", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    project.root_config(backend="aws")
    reset_caches(clients=True)
    yield project
    reset_caches(clients=True)


@pytest.mark.parametrize("sandbox_flag", [True, False])
def test_an_unreachable_endpoint_fails_fast_and_by_name(aws_env, run_mila, monkeypatch,
                                                        sandbox_flag) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    if sandbox_flag:
        monkeypatch.setenv("MILA_SANDBOX", "1")
    t0 = time.monotonic()
    r = run_mila("envs", "list")
    took = time.monotonic() - t0
    assert r.exit_code == 2, r.output
    assert took < 5, took
    assert url in r.output and "Traceback" not in r.output
    if sandbox_flag:
        assert "the sandbox is not running" in r.output
        assert "mila sandbox --background" in r.output
    else:
        assert f"cannot reach the AWS endpoint {url}" in r.output


def test_sandbox_refuses_a_service_endpoint_that_is_not_loopback(aws_env, monkeypatch) -> None:
    from mila_aws.session import client, verify_target

    monkeypatch.setenv("MILA_SANDBOX", "1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    # never contacted: refused before any request
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "https://cloudformation.example.invalid")
    for call in (lambda: client("cloudformation", "eu-west-1"), lambda: client("sts"),
                 lambda: verify_target("eu-west-1")):
        with pytest.raises(MilaError, match="AWS_ENDPOINT_URL_CLOUDFORMATION=https://cloudfor"):
            call()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://localhost:1")
    with pytest.raises(MilaError, match="the sandbox is not running"):  # now only unreachable
        client("cloudformation", "eu-west-1")
