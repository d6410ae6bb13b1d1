"""Several `mila deploy` processes at once, killed runs and released locks, with real child
processes on the local and the aws (sandbox) backends.

The promises: every changed service x region is deployed exactly once whatever runs at once
(the others end ``skipped``, with a history row each); no record is left ``in_progress``; a
killed run's lock expires after the lease (``[state] lock_lease_seconds``) and a plain rerun
recovers it, writing an ``interrupted`` history row for the dead attempt.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mila_fake_deployer import calls

from mila.model import Status

REGIONS = ("eu-west-1", "us-east-1")
SERVICES = ("api", "web", "worker")
SUPPORT = str(Path(__file__).parents[1] / "support")


@pytest.fixture(params=["local", "aws"])
def shop(request, project, run_mila, monkeypatch):
    if request.param == "aws":
        request.getfixturevalue("sandbox")
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"], backend=request.param,
                        extra="lock_lease_seconds = 3\n")
    project.service("api", 'deployer = "fake"\nsleep = 1.5\n')
    project.service("web", 'deployer = "fake"\nsleep = 1.5\ndepends_on = ["api"]\n')
    project.service("worker", 'deployer = "fake"\nsleep = 1.5\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", ",".join(REGIONS)).exit_code == 0
    return project


def start(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "MILA_PLUGINS": "mila_fake_deployer", "PYTHONPATH": SUPPORT,
           **(env or {})}
    mila = str(Path(sys.executable).with_name("mila"))
    return subprocess.Popen([mila, "-C", str(root), "deploy", "-e", "dev", "--no-prompt",
                             "-c", "6", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def state_of(root: Path):
    from mila.project import load_project

    return load_project(root).state


def wait_for_log(root: Path, service: str, region: str = "eu-west-1") -> None:
    log = root / ".mila" / "logs" / "dev" / f"{service}.{region}.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and "# mila " in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{service} never started deploying")


@pytest.mark.slow
def test_runs_at_once_deploy_each_change_exactly_once(shop) -> None:
    state = state_of(shop.root)
    tried = skipped = 0
    for round_, runs in enumerate((2, 4, 2, 4)):
        # round 0 deploys everything first; then two services change (4 actions)
        touched = SERVICES if round_ == 0 else SERVICES[round_ % 2: round_ % 2 + 2]
        for service in touched:
            shop.write(f"services/{service}/handler.py", f"# round {round_}\n")
        changed = {(s, r) for s in touched for r in REGIONS}
        before_calls = len(calls(shop.root))
        before_rows = len(state.history("dev"))
        procs = [start(shop.root) for _ in range(runs)]
        outputs = [p.communicate(timeout=180)[0] for p in procs]
        tried += runs
        assert [p.returncode for p in procs] == [0] * runs, "\n".join(outputs)
        deploys = Counter((c["service"], c["region"]) for c in calls(shop.root)[before_calls:])
        assert deploys == Counter(dict.fromkeys(changed, 1)), (round_, deploys)
        # one history row per action each run planned: succeeded once, skipped by the others
        planned = sum(int(m.group(1)) for out in outputs
                      for m in re.finditer(r"(\d+) to deploy", out))
        rows = state.history("dev")[: len(state.history("dev")) - before_rows]
        assert len(rows) == planned, (round_, planned, rows)
        assert Counter((r.service, r.region) for r in rows if r.status is Status.SUCCEEDED) \
            == Counter(dict.fromkeys(changed, 1))
        assert {r.status for r in rows} <= {Status.SUCCEEDED, Status.SKIPPED}
        assert all("already deployed by" in (r.message or "") for r in rows
                   if r.status is Status.SKIPPED)
        skipped += sum(1 for r in rows if r.status is Status.SKIPPED)
        records = state.records("dev")
        assert len(records) == len(SERVICES) * len(REGIONS)
        assert {r.status for r in records} == {Status.SUCCEEDED}
        assert state.locks("dev") == []
    assert tried == 12
    assert skipped > 0, "the runs never overlapped: nothing was tested"
    print(f"runs {tried}, skipped {skipped}")  # figures for the issue


def slow_run(shop, seconds: str = "60") -> subprocess.Popen[str]:
    proc = start(shop.root, "-s", "worker", env={"MILA_FAKE_SLEEP": seconds})
    wait_for_log(shop.root, "worker")
    wait_for_log(shop.root, "worker", "us-east-1")
    return proc


@pytest.mark.slow
def test_a_killed_run_is_recovered_by_a_plain_rerun(shop) -> None:
    state = state_of(shop.root)
    proc = slow_run(shop)
    proc.kill()  # SIGKILL: no clean-up at all
    proc.wait(timeout=30)
    assert {r.status for r in state.records("dev")} == {Status.IN_PROGRESS}
    assert len(state.locks("dev")) == 2
    t0 = time.monotonic()
    rerun = start(shop.root, "-s", "worker", env={"MILA_FAKE_SLEEP": "0"})
    out = rerun.communicate(timeout=120)[0]
    recovered_in = time.monotonic() - t0
    assert rerun.returncode == 0, out
    assert recovered_in < 3 + 20, out  # the 3 s lease, plus start-up on a busy machine
    print(f"SIGKILL recovered by a plain rerun in {recovered_in:.1f}s")
    assert {(r.service, r.status) for r in state.records("dev")} == {("worker", Status.SUCCEEDED)}
    assert state.locks("dev") == []
    rows = state.history("dev")
    interrupted = [r for r in rows if r.status is Status.INTERRUPTED]
    assert {(r.service, r.region) for r in interrupted} == {("worker", g) for g in REGIONS}
    assert all("never finished" in (r.message or "") and r.by for r in interrupted)
    assert Counter(r.status for r in rows) == {Status.INTERRUPTED: 2, Status.SUCCEEDED: 2}


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                          (signal.SIGINT, 130)])
def test_sigterm_sighup_and_ctrl_c_stop_cleanly(shop, signum, code) -> None:
    if shop.root.joinpath("mila.toml").read_text().count('"aws"') and signum != signal.SIGTERM:
        pytest.skip("one signal is enough on the aws backend")
    state = state_of(shop.root)
    proc = slow_run(shop)
    proc.send_signal(signum)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == code, out
    assert {r.status for r in state.records("dev")} == {Status.FAILED}
    assert state.locks("dev") == []
    assert {(r.service, r.status) for r in state.history("dev")} == {("worker", Status.FAILED)}
    rerun = start(shop.root, "-s", "worker", env={"MILA_FAKE_SLEEP": "0"})
    assert rerun.wait(timeout=120) == 0


@pytest.mark.slow
def test_a_holder_whose_lock_is_released_stops_and_records_lock_lost(shop, run_mila) -> None:
    state = state_of(shop.root)
    proc = slow_run(shop)
    live = run_mila("release-lock", "-e", "dev", "-s", "worker", "--yes")
    assert live.exit_code == 3 and "live lock" in live.output, live.output
    released = run_mila("release-lock", "-e", "dev", "-s", "worker", "--yes", "--force")
    assert released.exit_code == 0, released.output
    out = proc.communicate(timeout=60)[0]  # the heartbeat (every 1 s) finds the lock gone
    assert proc.returncode == 1, out
    assert "lock lost" in out
    assert {r.status for r in state.records("dev")} == {Status.FAILED}
    assert state.locks("dev") == []
    rows = state.history("dev")
    assert [r.status for r in rows] == [Status.FAILED, Status.FAILED]
    assert all((r.message or "").startswith("lock lost") for r in rows)
