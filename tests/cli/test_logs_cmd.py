"""`mila logs`: the last action's log, an older action's (--action N), a function's
CloudWatch logs (--function, --follow) from the sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config()
    project.service("api", 'deployer = "fake"\n')
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev").exit_code == 0
    return project


def test_last_and_older_action_logs(shop, run_mila) -> None:
    r = run_mila("logs", "-e", "dev", "api")
    assert r.exit_code == 2 and "no log of api in dev on this machine" in r.output
    assert run_mila("deploy", "-e", "dev", "--yes").exit_code == 0
    (shop.root / "services" / "api" / "FAIL").write_text("")
    assert run_mila("deploy", "-e", "dev", "--yes").exit_code == 1
    r = run_mila("logs", "-e", "dev", "api")
    assert r.exit_code == 0 and "fake failure log line" in r.output
    assert "# mila deploy api" in r.output
    r = run_mila("logs", "-e", "dev", "api", "--action", "2")  # the first deploy
    assert r.exit_code == 0, r.output
    assert "# mila first_deploy api" in r.output and "deployed shop-api-dev" in r.output
    kept = list((shop.root / ".mila" / "action-logs" / "dev").iterdir())
    assert len(kept) == 2 and {p.stat().st_mode & 0o777 for p in kept} == {0o600}
    r = run_mila("logs", "-e", "dev", "api", "--action", "3")
    assert r.exit_code == 2 and "api has 2 action(s) in dev" in r.output
    r = run_mila("logs", "-e", "dev", "apx")
    assert r.exit_code == 2 and "did you mean 'api'" in r.output


def put_events(region: str, group: str, *messages: str) -> None:
    import boto3

    logs = boto3.client("logs", region_name=region)
    try:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": now + i, "message": m}
                                   for i, m in enumerate(messages)])


def test_function_logs_and_follow(sandbox, shop, run_mila) -> None:
    assert run_mila("deploy", "-e", "dev", "--yes").exit_code == 0
    put_events("eu-west-1", "/aws/lambda/shop-api-handler", "START", "hello from api")
    r = run_mila("logs", "-e", "dev", "api", "--function", "shop-api-handler")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["START", "hello from api"]
    r = run_mila("logs", "-e", "dev", "api", "--function", "nope")
    assert r.exit_code == 2 and "no log group /aws/lambda/nope" in r.output

    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "support")}
    proc = subprocess.Popen([sys.executable, "-m", "mila", "-C", str(shop.root), "logs", "-e",
                             "dev", "api", "--function", "shop-api-handler", "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().endswith("START\n")
        assert proc.stdout.readline().endswith("hello from api\n")
        put_events("eu-west-1", "/aws/lambda/shop-api-handler", "a new line")
        assert proc.stdout.readline().endswith("a new line\n")  # followed, printed once
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 130
