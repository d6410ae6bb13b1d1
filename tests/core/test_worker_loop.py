"""One worker of a shared plan (``mila apply PLAN --worker``), in-process on the local backend:
when it reads the state, which actions it reaches for, and how it waits for other workers.
The multi-process promises (exactly once, a killed worker taken over) are in
``tests/cli/test_workers.py``."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from mila_fake_deployer import calls

from mila.deploy import RunOptions, SilentReporter, check_plan_for_worker, plan_to_json, prepare
from mila.model import Record, Status, utcnow
from mila.project import load_project
from mila.testing.contracts import make_owner
from mila.workers import DONE_ELSEWHERE, Worker, longest_run_middle

REGION = "eu-west-1"


@pytest.fixture
def five(project, run_mila, monkeypatch):
    """Five independent services of 0.1 s deploys, and a saved plan of them."""
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"], backend="local")
    for i in range(5):
        project.service(f"s{i}", 'deployer = "fake"\nsleep = 0.1\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", REGION).exit_code == 0
    loaded = load_project(project.root)
    return loaded, plan_to_json(prepare(loaded, "dev"))


def worker(project, saved, *, concurrency: int = 1, poll: float = 30.0) -> Worker:
    prepared, work = check_plan_for_worker(project, saved)
    return Worker(project, prepared, work, RunOptions(concurrency=concurrency),
                  SilentReporter(), threading.Event(), poll=poll)


def counting(monkeypatch, state, method: str) -> list[tuple]:
    seen: list[tuple] = []
    real = getattr(state, method)

    def spy(*args, **kwargs):
        seen.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(state, method, spy)
    return seen


def test_a_freed_slot_starts_the_next_action_without_reading_or_waiting(five,
                                                                        monkeypatch) -> None:
    """One slot, five actions: each starts as the one before ends, from what the plan check
    read; no poll interval (30 s here) is waited, and the state is not read again."""
    project, saved = five
    one = worker(project, saved)
    reads = counting(monkeypatch, project.state, "records")
    t0 = time.monotonic()
    report = one.run()
    assert time.monotonic() - t0 < 10
    assert report.ok and {o.status for o in report.outcomes.values()} == {Status.SUCCEEDED}
    assert reads == []
    deploys = sorted((c for c in calls(project.root) if c["op"] == "deploy"),
                     key=lambda c: c["start"])
    assert len(deploys) == 5
    gaps = [b["start"] - a["end"] for a, b in itertools.pairwise(deploys)]
    assert max(gaps) < 1.0, gaps  # not a poll interval


def test_an_action_another_worker_carries_out_is_not_tried_and_ends_done(five,
                                                                          monkeypatch) -> None:
    """An action whose record another run set ``in_progress`` after the plan: its lock is not
    tried (it is held; a dead holder's lease is retried only after a third of a lease); the
    worker waits, reading the state, and counts it done by another worker once recorded."""
    project, saved = five
    state = project.state
    other = make_owner("other")
    lock = state.acquire_lock("dev", "s2", REGION, other, timedelta(minutes=5))
    busy = Record("dev", "s2", REGION, None, Status.IN_PROGRESS, "fake", version=1,
                  started_by="other", started_at=utcnow())
    state.put_record(busy, lock)
    tried = counting(monkeypatch, state, "acquire_lock")

    def other_worker_finishes() -> None:
        time.sleep(1.0)
        done = Record("dev", "s2", REGION, "c" * 64, Status.SUCCEEDED, "fake", version=2,
                      deployed_at=utcnow(), deployed_by="other")
        state.put_record(done, lock)
        state.release(lock)

    finisher = threading.Thread(target=other_worker_finishes)
    finisher.start()
    t0 = time.monotonic()
    report = worker(project, saved, concurrency=2, poll=5.0).run()
    finisher.join()
    assert time.monotonic() - t0 < 4.5  # noticed by its reads while waiting, not after a poll
    assert all(args[1] != "s2" for args in tried), "tried the lock another worker holds"
    outcome = report.outcomes[("s2", REGION)]
    assert (outcome.status, outcome.message) == (Status.SKIPPED, DONE_ELSEWHERE)
    assert sorted(c["service"] for c in calls(project.root) if c["op"] == "deploy") == \
        ["s0", "s1", "s3", "s4"]


@pytest.mark.parametrize(("positions", "n", "run"), [
    ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 12, range(12)),
    ([0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20], 30, range(5, 14)),
    ([0, 1, 2, 3, 10, 26, 27, 28, 29], 30, [26, 27, 28, 29, 0, 1, 2, 3]),  # wraps around
])
def test_a_worker_that_meets_another_moves_to_the_middle_of_the_longest_free_run(
        positions: list[int], n: int, run: range) -> None:
    run = list(run)
    middle = run[len(run) // 2]
    for _ in range(50):
        at = longest_run_middle(positions, n)
        assert at in run
        assert abs(run.index(at) - run.index(middle)) <= len(run) // 6 + 1


def test_a_waiting_worker_expects_anothers_action_to_end_after_its_own_typical_duration(
        five) -> None:
    """Waiting for another worker's action, a worker reads again just after the end it
    expects: when that action started, plus the median duration of its own actions."""
    from mila.orchestrator import Outcome

    project, saved = five
    one = worker(project, saved)
    assert one.next_expected_end() is None  # nothing of its own done yet: no estimate
    for i, seconds in enumerate((1.0, 2.0, 9.0)):
        one.report.outcomes[(f"s{i}", REGION)] = Outcome(
            (f"s{i}", REGION), Status.SUCCEEDED, started_at=0.0, ended_at=seconds)
    one.records[("s4", REGION)] = Record(
        "dev", "s4", REGION, None, Status.IN_PROGRESS, "fake", version=1,
        started_by="other", started_at=utcnow() - timedelta(seconds=0.5))
    assert 1.3 < one.next_expected_end() < 1.5  # started 0.5 s ago, typical 2 s
    one.records[("s4", REGION)] = replace(one.records[("s4", REGION)],
                                          started_at=utcnow() - timedelta(seconds=5))
    assert one.next_expected_end() is None  # overdue: back to the doubling wait
