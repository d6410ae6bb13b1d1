"""The orchestrator with synthetic tasks: order, concurrency cap, failures, cancellation."""

from __future__ import annotations

import random
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mila.model import Status
from mila.orchestrator import Task, run_tasks


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started: list[str] = []
        self.finished: list[str] = []

    def task(self, key: str, deps: tuple[str, ...] = (), sleep: float = 0.0,
             fail: bool = False) -> Task:
        def run(cancel: threading.Event) -> str:
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
                self.started.append(key)
            try:
                time.sleep(sleep)
                if fail:
                    raise RuntimeError(f"{key} failed")
                return key
            finally:
                with self.lock:
                    self.running -= 1
                    self.finished.append(key)
        return Task(key, run, deps)


def test_dependencies_run_first_and_results_are_kept() -> None:
    r = Recorder()
    report = run_tasks([r.task("app", ("infra",)), r.task("infra"), r.task("web", ("app",))], 4)
    assert report.ok
    assert r.finished.index("infra") < r.started.index("app") < r.started.index("web")
    assert report.outcomes["web"].result == "web"


def test_concurrency_is_never_exceeded_and_is_reached() -> None:
    r = Recorder()
    report = run_tasks([r.task(f"t{i}", sleep=0.03) for i in range(12)], 3)
    assert report.ok and r.peak == 3


def test_failure_skips_dependents_and_independent_tasks_carry_on() -> None:
    r = Recorder()
    report = run_tasks([r.task("infra", fail=True), r.task("app", ("infra",)),
                        r.task("web", ("app",)), r.task("other")], 2)
    assert not report.ok
    assert report.outcomes["infra"].status is Status.FAILED
    assert str(report.outcomes["infra"].error) == "infra failed"
    assert report.outcomes["app"].status is Status.SKIPPED
    assert report.outcomes["web"].status is Status.SKIPPED
    assert report.outcomes["web"].blocked_by == "infra"
    assert report.outcomes["other"].status is Status.SUCCEEDED
    assert "app" not in r.started


def test_cancel_stops_scheduling_and_lets_running_tasks_finish() -> None:
    cancel = threading.Event()
    seen: list[bool] = []

    def first(ev: threading.Event) -> None:
        cancel.set()
        seen.append(ev.is_set())

    tasks = [Task("first", first), Task("later", lambda ev: None, ("first",)),
             Task("free", lambda ev: None, ("first",))]
    report = run_tasks(tasks, 1, cancel=cancel)
    assert report.cancelled and seen == [True]
    assert report.outcomes["first"].status is Status.SUCCEEDED
    assert report.outcomes["later"].status is Status.CANCELLED
    assert report.outcomes["free"].status is Status.CANCELLED


def test_invalid_graphs_and_concurrency_are_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        run_tasks([Task("a", lambda e: None, ("b",)), Task("b", lambda e: None, ("a",))], 1)
    with pytest.raises(ValueError, match="unknown"):
        run_tasks([Task("a", lambda e: None, ("zzz",))], 1)
    with pytest.raises(ValueError, match="concurrency"):
        run_tasks([], 513)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 25), c=st.integers(1, 6))
def test_random_dags_respect_order_cap_and_failure_propagation(seed: int, n: int, c: int) -> None:
    rnd = random.Random(seed)
    r = Recorder()
    deps = {f"t{i}": tuple(f"t{j}" for j in range(i) if rnd.random() < 0.25) for i in range(n)}
    failing = {k for k in deps if rnd.random() < 0.15}
    report = run_tasks([r.task(k, d, sleep=0.001, fail=k in failing) for k, d in deps.items()], c)
    assert r.peak <= c
    for k, d in deps.items():
        outcome = report.outcomes[k]
        failed_upstream = any(report.outcomes[x].status is not Status.SUCCEEDED for x in d)
        if failed_upstream:
            assert outcome.status is Status.SKIPPED
        else:
            assert outcome.status is (Status.FAILED if k in failing else Status.SUCCEEDED)
            for x in d:
                assert r.finished.index(x) < r.started.index(k)
