"""A generic parallel DAG runner: the core's engine, knowing nothing of AWS.

Tasks run in worker threads, at most ``concurrency`` at once, each after every task it depends
on succeeded. A task that finds its work already done returns :class:`Done` (outcome
``skipped``, with its message): its dependents still run. When a task fails, the tasks that
depend on it (transitively) are ``skipped``; independent tasks carry on. Cancellation (Ctrl-C
in the calling thread, or ``cancel.set()``) stops scheduling, sets the ``cancel`` event every
running task can watch, waits for running tasks to return, and reports the never-started ones
as ``cancelled``.

Threads, not processes: a task is I/O-bound (waiting on CloudFormation), and one scheduler
thread hands ready tasks to a fixed pool as soon as their dependencies finish, so the overhead
per task is a heap push and a queue hop (``bench/bench_orchestrator.py`` measures it against
the ideal schedule).
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from mila.model import Status

MAX_CONCURRENCY = 512


#: The floor of the default concurrency: actions wait on AWS, not on the CPU, so a 2-vCPU CI
#: runner should still run several CloudFormation stacks at once.
MIN_DEFAULT_CONCURRENCY = 4


def default_concurrency() -> int:
    """Half the machine's threads, but at least :data:`MIN_DEFAULT_CONCURRENCY`."""
    return max(MIN_DEFAULT_CONCURRENCY, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class Task:
    """``run(cancel)`` does the work; its return value becomes the outcome's ``result``."""

    key: Hashable
    run: Callable[[threading.Event], Any]
    deps: tuple[Hashable, ...] = ()


@dataclass(frozen=True)
class Done:
    """What a task returns when its work was already done (by someone else): the outcome is
    ``skipped`` with ``message``, ``result`` is kept, and the tasks depending on it run."""

    message: str
    result: Any = None


@dataclass
class Outcome:
    key: Hashable
    status: Status
    result: Any = None
    error: BaseException | None = None
    started_at: float | None = None
    ended_at: float | None = None
    blocked_by: Hashable | None = None  # for skipped tasks: the failed task that caused it
    message: str = ""  # for tasks that returned Done: why nothing was done

    @property
    def ok(self) -> bool:
        """Succeeded, or found its work already done: its dependents may run."""
        return self.status is Status.SUCCEEDED or (self.status is Status.SKIPPED
                                                   and self.blocked_by is None and not self.error)

    @property
    def duration(self) -> float:
        if self.started_at is None or self.ended_at is None:
            return 0.0
        return self.ended_at - self.started_at


@dataclass
class RunReport:
    outcomes: dict[Hashable, Outcome] = field(default_factory=dict)
    cancelled: bool = False
    wall_seconds: float = 0.0
    #: the signal that cancelled the run (SIGTERM, SIGHUP raised as ``mila.errors.Terminated``)
    signal: int | None = None

    def by_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.status is status]

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(o.ok for o in self.outcomes.values())


def check_graph(tasks: Iterable[Task]) -> dict[Hashable, Task]:
    """Index tasks by key; refuse duplicates, unknown dependencies and cycles."""
    from mila.workspace import find_cycle

    by_key: dict[Hashable, Task] = {}
    for t in tasks:
        if t.key in by_key:
            raise ValueError(f"duplicate task {t.key!r}")
        by_key[t.key] = t
    for t in by_key.values():
        for d in t.deps:
            if d not in by_key:
                raise ValueError(f"task {t.key!r} depends on unknown task {d!r}")
    names = {k: str(k) for k in by_key}
    cycle = find_cycle({names[k]: [names[d] for d in t.deps] for k, t in by_key.items()})
    if cycle:
        raise ValueError(f"task cycle: {' -> '.join(cycle)}")
    return by_key


def run_tasks(
    tasks: Iterable[Task],
    concurrency: int | None = None,
    *,
    cancel: threading.Event | None = None,
    on_start: Callable[[Hashable], None] | None = None,
    on_finish: Callable[[Outcome], None] | None = None,
) -> RunReport:
    """Run ``tasks`` respecting their dependencies; returns every task's outcome.

    ``on_start``/``on_finish`` are called from worker threads (on_finish from the scheduler for
    skipped/cancelled tasks). KeyboardInterrupt in the calling thread cancels the run; the
    report then has ``cancelled=True`` — the caller decides the exit code.
    """
    concurrency = concurrency or default_concurrency()
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be from 1 to {MAX_CONCURRENCY}, got {concurrency}")
    by_key = check_graph(tasks)
    t0 = time.monotonic()
    run = _Scheduler(by_key, cancel or threading.Event(), on_start, on_finish)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mila-action")
    try:
        run.schedule(pool, concurrency)
    except KeyboardInterrupt as exc:
        run.interrupted(exc)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    run.cancel_the_rest()
    run.report.wall_seconds = time.monotonic() - t0
    return run.report


class _Scheduler:
    """One :func:`run_tasks`: how many unfinished dependencies each task waits on, the ready
    tasks, the running ones, and the report."""

    def __init__(self, by_key: dict[Hashable, Task], cancel: threading.Event,
                 on_start: Callable[[Hashable], None] | None,
                 on_finish: Callable[[Outcome], None] | None) -> None:
        self.by_key, self.cancel = by_key, cancel
        self.on_start, self.on_finish = on_start, on_finish
        self.report = RunReport()
        self.dependents: dict[Hashable, list[Hashable]] = {k: [] for k in by_key}
        self.waiting_on: dict[Hashable, int] = {}
        for k, t in by_key.items():
            self.waiting_on[k] = len(set(t.deps))
            for d in set(t.deps):
                self.dependents[d].append(k)
        # Ready tasks start in the order of their keys' text, so a run is reproducible; a heap
        # keeps that order at O(log n) per task (a list re-sorted on every completion was
        # O(n log n)).
        self.ready: list[tuple[str, int, Hashable]] = []
        self.order = {k: i for i, k in enumerate(by_key)}  # ties between equal texts: insertion
        for k, n in self.waiting_on.items():
            if n == 0:
                self.make_ready(k)
        self.running: dict[Future[Any], Hashable] = {}

    def make_ready(self, key: Hashable) -> None:
        heapq.heappush(self.ready, (str(key), self.order[key], key))

    def schedule(self, pool: ThreadPoolExecutor, concurrency: int) -> None:
        """Start ready tasks up to ``concurrency``, settle each as it ends, until none is left
        (or the run is cancelled and nothing runs)."""
        while self.ready or self.running:
            while self.ready and len(self.running) < concurrency and not self.cancel.is_set():
                key = heapq.heappop(self.ready)[2]
                self.running[pool.submit(self.work, key)] = key
            if self.cancel.is_set() and not self.running:
                break
            # The timeout only bounds how late a cancel set from another thread is noticed while
            # every running task ignores it; completions wake the scheduler at once.
            done, _ = wait(self.running, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in done:
                key = self.running.pop(fut)
                self.settle(key, fut.result())

    def work(self, key: Hashable) -> Outcome:
        """Run one task (in a worker thread); its failure is data, never a crash of the run."""
        outcome = Outcome(key, Status.SUCCEEDED, started_at=time.monotonic())
        try:
            if self.on_start is not None:
                self.on_start(key)
            outcome.result = self.by_key[key].run(self.cancel)
            if isinstance(outcome.result, Done):
                outcome.status = Status.SKIPPED
                outcome.message, outcome.result = outcome.result.message, outcome.result.result
        except BaseException as exc:  # a task's failure is data, never a crash of the run
            # a task that stops because the run was cancelled is cancelled, not failed
            outcome.status = Status.CANCELLED if self.cancel.is_set() else Status.FAILED
            outcome.error = exc
        outcome.ended_at = time.monotonic()
        return outcome

    def settle(self, key: Hashable, outcome: Outcome) -> None:
        """Record an ended task: its dependents get closer to ready, or are skipped."""
        self.finish(outcome)
        if not outcome.ok:
            self.skip_dependents(key)
            return
        for d in self.dependents[key]:
            self.waiting_on[d] -= 1
            if self.waiting_on[d] == 0 and d not in self.report.outcomes:
                self.make_ready(d)

    def finish(self, outcome: Outcome) -> None:
        self.report.outcomes[outcome.key] = outcome
        if self.on_finish is not None:
            self.on_finish(outcome)

    def skip_dependents(self, failed: Hashable) -> None:
        stack = list(self.dependents[failed])
        while stack:
            k = stack.pop()
            if k not in self.report.outcomes:
                self.finish(Outcome(k, Status.SKIPPED, blocked_by=failed))
                stack.extend(self.dependents[k])

    def interrupted(self, exc: KeyboardInterrupt) -> None:
        """Ctrl-C (or SIGTERM/SIGHUP): cancel, and let running tasks see the event and return;
        a second Ctrl-C abandons them."""
        self.cancel.set()
        self.report.signal = getattr(exc, "signum", None)
        for fut, key in list(self.running.items()):
            try:
                self.finish(fut.result())
            except KeyboardInterrupt:
                break
            except Exception as error:  # pragma: no cover - work() never raises
                self.finish(Outcome(key, Status.FAILED, error=error))

    def cancel_the_rest(self) -> None:
        if self.cancel.is_set():
            self.report.cancelled = True
            for k in self.by_key:
                if k not in self.report.outcomes:
                    self.finish(Outcome(k, Status.CANCELLED))
