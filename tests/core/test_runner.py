"""The action runner's rules, one at a time, in-process on the local backend: what an action
does when, once it holds its lock, it finds its record changed since the plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from mila_fake_deployer import calls

from mila.deploy import RunOptions, execute, prepare
from mila.errors import ActionStale
from mila.model import Status, utcnow
from mila.project import load_project
from mila.testing.contracts import make_owner

REGION = "eu-west-1"


@pytest.fixture
def shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"], backend="local")
    project.service("api", 'deployer = "fake"\n')
    project.service("web", 'deployer = "fake"\ndepends_on = ["api"]\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", REGION).exit_code == 0
    return load_project(project.root)


def run(project, prepared):
    return execute(project, prepared, RunOptions(concurrency=2, lock_poll_seconds=0.05))


def write(project, record):
    state = project.state
    lock = state.acquire_lock("dev", record.service, REGION, make_owner(), timedelta(minutes=1))
    try:
        state.put_record(record, lock)
    finally:
        state.release(lock)


def test_an_action_another_run_already_did_is_skipped_and_its_dependents_run(shop) -> None:
    prepared = prepare(shop, "dev")
    first = run(shop, prepared)  # "another run" carrying out the same plan
    assert first.ok
    deployed = len(calls(shop.root))
    rows = len(shop.state.history("dev"))
    report = run(shop, prepared)  # the plan made before it ran
    assert report.ok  # skipped-as-done counts as done: web was not blocked by api
    assert {o.status for o in report.outcomes.values()} == {Status.SKIPPED}
    assert all("already deployed by" in o.message for o in report.outcomes.values())
    assert len(calls(shop.root)) == deployed  # no deployer call
    history = shop.state.history("dev")[: len(shop.state.history("dev")) - rows]
    assert sorted((h.service, h.status) for h in history) == [("api", Status.SKIPPED),
                                                               ("web", Status.SKIPPED)]


def test_a_record_that_moved_on_makes_the_action_stale_and_nothing_is_written(shop) -> None:
    run(shop, prepare(shop, "dev"))
    shop.root.joinpath("services/web/handler.py").write_text("# v2\n")
    prepared = prepare(shop, "dev", only=["web"])
    (web,) = [r for r in shop.state.records("dev") if r.service == "web"]
    moved = replace(web, checksum="f" * 64, version=web.version + 1, deployed_by="carol@ci")
    write(shop, moved)
    rows = len(shop.state.history("dev"))
    report = run(shop, prepared)
    (outcome,) = report.outcomes.values()
    assert outcome.status is Status.FAILED and isinstance(outcome.error, ActionStale)
    assert "changed since the plan" in str(outcome.error) and "carol@ci" in str(outcome.error)
    assert [r for r in shop.state.records("dev") if r.service == "web"] == [moved]
    assert len(shop.state.history("dev")) == rows


def test_an_abandoned_in_progress_record_is_recovered_then_deployed(shop) -> None:
    prepared = prepare(shop, "dev", only=["api"])
    dead = shop.state.acquire_lock("dev", "api", REGION, make_owner("dead"),
                                   timedelta(seconds=0.05))
    from mila.model import Record

    shop.state.put_record(Record("dev", "api", REGION, None, Status.IN_PROGRESS, "fake",
                                 version=1, started_by="dead@host", started_at=utcnow()), dead)
    report = run(shop, prepared)
    assert report.ok, report.outcomes
    (api,) = [r for r in shop.state.records("dev") if r.service == "api"]
    assert api.status is Status.SUCCEEDED and api.version == 4  # marker, recovered, begun, done
    statuses = [(h.status, h.by) for h in reversed(shop.state.history("dev"))]
    assert statuses[0] == (Status.INTERRUPTED, "dead@host")
    assert statuses[1][0] is Status.SUCCEEDED


@pytest.mark.parametrize("data, problem", [
    ({1: "x"}, "not a mapping with string keys"),
    (["x"], "not a mapping with string keys"),
    ({"when": utcnow()}, "not JSON-serialisable"),
    ({"x": float("nan")}, "not JSON-serialisable"),
    ({"big": "x" * 20000}, "over the limit of 16384"),
])
def test_deployer_data_that_cannot_be_stored_fails_the_action(data, problem) -> None:
    from mila.errors import DeployError
    from mila.runner import check_deployer_data

    with pytest.raises(DeployError, match=f"deployer 'zip' returned DeployResult.data that.*"
                                          f"{problem}"):
        check_deployer_data("zip", data)
    check_deployer_data("zip", {"key": "s3://b/k", "n": [1, {"ok": None}]})  # storable: fine


def test_an_action_linked_to_its_run_is_cancelled_with_it_and_ends_without_waiting() -> None:
    """The run's cancel reaches the action's own event during the action; the end of an
    action does not wait for the link's 0.1 s watcher (it made every action's slot wait)."""
    import threading
    import time

    from mila.runner import _linked

    parent, child = threading.Event(), threading.Event()
    with _linked(parent, child):
        parent.set()
        assert child.wait(2)
    t0 = time.monotonic()
    for _ in range(30):  # 3 s if each end waited for the watcher's next look
        with _linked(threading.Event(), threading.Event()):
            pass
    assert time.monotonic() - t0 < 1.5
