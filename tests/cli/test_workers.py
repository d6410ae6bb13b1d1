"""`mila apply PLAN --worker`: one saved plan carried out by several real processes at once,
on the local and the aws (sandbox) backends.

The promises: each action of the plan is deployed exactly once (one completed deployer call),
each after its dependencies in its region; a worker killed midway leaves a lease that expires,
and the others take its actions over; every surviving worker exits with the plan's result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mila_fake_deployer import calls

from mila.model import Status

REGIONS = ("eu-west-1", "us-east-1", "eu-central-1")
SUPPORT = str(Path(__file__).parents[1] / "support")
# 20 services x 3 regions = 60 actions: 5 at the base, 10 above them, 5 on top
BASE = [f"base{i}" for i in range(5)]
MID = [f"mid{i}" for i in range(10)]
TOP = [f"top{i}" for i in range(5)]


@pytest.fixture(params=["local", "aws"])
def planned(request, project, run_mila, monkeypatch):
    if request.param == "aws":
        request.getfixturevalue("sandbox")
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    # A short lease, so a killed worker's actions are taken over soon; not so short that a
    # heartbeat starved on a loaded machine loses a live worker's lock.
    project.root_config(workspaces=["services/*"], backend=request.param,
                        extra="lock_lease_seconds = 8\n")
    for name in BASE:
        project.service(name, 'deployer = "fake"\nsleep = 0.3\n')
    for i, name in enumerate(MID):
        project.service(name, f'deployer = "fake"\nsleep = 0.3\ndepends_on = ["{BASE[i % 5]}"]\n')
    for i, name in enumerate(TOP):
        project.service(name, f'deployer = "fake"\nsleep = 0.3\n'
                              f'depends_on = ["{MID[i]}", "{MID[i + 5]}"]\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", ",".join(REGIONS)).exit_code == 0
    r = run_mila("deploy", "-e", "dev", "--plan-out", str(project.root / "plan.json"))
    assert r.exit_code == 0, r.output
    return project


def worker(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "MILA_PLUGINS": "mila_fake_deployer", "PYTHONPATH": SUPPORT}
    mila = str(Path(sys.executable).with_name("mila"))
    return subprocess.Popen([mila, "-C", str(root), "apply", str(root / "plan.json"), "--worker",
                             "-c", "4"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def deps_of(service: str) -> list[str]:
    if service.startswith("mid"):
        return [BASE[int(service[3:]) % 5]]
    if service.startswith("top"):
        i = int(service[3:])
        return [MID[i], MID[i + 5]]
    return []


@pytest.mark.slow
def test_three_workers_share_a_plan_and_take_over_a_killed_one(planned) -> None:
    from mila.project import load_project

    root = planned.root
    state = load_project(root).state
    workers = [worker(root) for _ in range(3)]
    deadline = time.monotonic() + 60

    def deploying_in_first_worker() -> bool:
        held = {(lock.service, lock.region) for lock in state.locks("dev")
                if lock.owner.pid == workers[0].pid}
        return any((r.service, r.region) in held and r.status is Status.IN_PROGRESS
                   for r in state.records("dev"))

    while not deploying_in_first_worker():
        assert time.monotonic() < deadline, "the first worker never deployed"
        time.sleep(0.02)
    workers[0].send_signal(signal.SIGKILL)  # killed while it holds a lock, mid-deploy
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    for w, out in zip(workers[1:], outputs[1:], strict=True):
        assert w.returncode == 0, out

    # Exactly once among the living; an action the killed worker finished but died before
    # recording is deployed again by its taker (at-least-once across a crash, never twice
    # by live workers).
    killed = workers[0].pid
    done = [c for c in calls(root) if c["op"] == "deploy" and c["ok"] and c["pid"] != killed]
    counts = Counter((c["service"], c["region"]) for c in done)
    every = {(s, r) for s in BASE + MID + TOP for r in REGIONS}
    by_killed = {(c["service"], c["region"]) for c in calls(root) if c["pid"] == killed}
    assert set(counts) | by_killed == every
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    ended = {(c["service"], c["region"]): c for c in calls(root) if c["op"] == "deploy"
             and c["ok"]}  # the last completed call of each action
    for (service, region), call in ended.items():  # dependency order, region by region
        for dep in deps_of(service):
            assert call["start"] >= ended[(dep, region)]["end"], (service, dep, region)

    records = state.records("dev")
    assert len(records) == 60
    assert {r.status for r in records} == {Status.SUCCEEDED}
    # the killed worker's in-flight actions were recovered: an interrupted row each
    interrupted = [h for h in state.history("dev") if h.status is Status.INTERRUPTED]
    assert interrupted, "the killed worker was deploying something when it died"
    for out in outputs[1:]:  # each survivor saw the other's work, as skipped
        assert "done by another worker" in out or "already deployed by" in out, out


def test_a_worker_refuses_a_plan_whose_code_changed(planned, run_mila) -> None:
    (planned.root / "services" / "base0" / "handler.py").write_text("# changed\n")
    r = run_mila("apply", str(planned.root / "plan.json"), "--worker")
    assert r.exit_code == 2
    assert "the code changed since this plan was made (base0/" in r.output
    assert calls(planned.root) == []


def test_a_worker_after_the_plan_is_done_reports_the_plan_result(planned, run_mila) -> None:
    """A late worker (the others finished everything) does nothing and exits 0; its JSON
    result says every action was done by another worker."""
    r = run_mila("apply", str(planned.root / "plan.json"), "--worker", "-c", "8")
    assert r.exit_code == 0, r.output
    assert len([c for c in calls(planned.root) if c["op"] == "deploy"]) == 60
    late = run_mila("apply", str(planned.root / "plan.json"), "--worker", "--json")
    assert late.exit_code == 0, late.output
    doc = json.loads(late.stdout)
    assert {a["status"] for a in doc["actions"]} == {"skipped"}
    assert len([c for c in calls(planned.root) if c["op"] == "deploy"]) == 60
    # a worker's summary table lists its own work; the others' is one line
    again = run_mila("apply", str(planned.root / "plan.json"), "--worker")
    assert again.exit_code == 0, again.output
    assert "60 action(s) done by another worker" in again.output
    assert not [line for line in again.output.splitlines() if line.startswith("base0 ")]
