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
    cancel = cancel or threading.Event()
    report = RunReport()
    t0 = time.monotonic()

    dependents: dict[Hashable, list[Hashable]] = {k: [] for k in by_key}
    waiting_on: dict[Hashable, int] = {}
    for k, t in by_key.items():
        waiting_on[k] = len(set(t.deps))
        for d in set(t.deps):
            dependents[d].append(k)
    # Ready tasks start in the order of their keys' text, so a run is reproducible; a heap keeps
    # that order at O(log n) per task (a list re-sorted on every completion was O(n log n)).
    ready: list[tuple[str, int, Hashable]] = []
    order = {k: i for i, k in enumerate(by_key)}  # ties between equal texts: insertion order

    def make_ready(key: Hashable) -> None:
        heapq.heappush(ready, (str(key), order[key], key))

    for k, n in waiting_on.items():
        if n == 0:
            make_ready(k)
    running: dict[Future[Any], Hashable] = {}

    def finish(outcome: Outcome) -> None:
        report.outcomes[outcome.key] = outcome
        if on_finish is not None:
            on_finish(outcome)

    def skip_dependents(failed: Hashable) -> None:
        stack = list(dependents[failed])
        while stack:
            k = stack.pop()
            if k not in report.outcomes:
                finish(Outcome(k, Status.SKIPPED, blocked_by=failed))
                stack.extend(dependents[k])

    def work(key: Hashable) -> Outcome:
        outcome = Outcome(key, Status.SUCCEEDED, started_at=time.monotonic())
        try:
            if on_start is not None:
                on_start(key)
            outcome.result = by_key[key].run(cancel)
            if isinstance(outcome.result, Done):
                outcome.status = Status.SKIPPED
                outcome.message, outcome.result = outcome.result.message, outcome.result.result
        except BaseException as exc:  # a task's failure is data, never a crash of the run
            # a task that stops because the run was cancelled is cancelled, not failed
            outcome.status = Status.CANCELLED if cancel.is_set() else Status.FAILED
            outcome.error = exc
        outcome.ended_at = time.monotonic()
        return outcome

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mila-action")
    try:
        while ready or running:
            while ready and len(running) < concurrency and not cancel.is_set():
                key = heapq.heappop(ready)[2]
                running[pool.submit(work, key)] = key
            if cancel.is_set() and not running:
                break
            # The timeout only bounds how late a cancel set from another thread is noticed while
            # every running task ignores it; completions wake the scheduler at once.
            done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in done:
                key = running.pop(fut)
                outcome = fut.result()
                finish(outcome)
                if outcome.ok:
                    for d in dependents[key]:
                        waiting_on[d] -= 1
                        if waiting_on[d] == 0 and d not in report.outcomes:
                            make_ready(d)
                else:
                    skip_dependents(key)
    except KeyboardInterrupt as exc:
        cancel.set()
        report.signal = getattr(exc, "signum", None)
        # let running tasks see the event and return; a second Ctrl-C abandons them
        for fut, key in list(running.items()):
            try:
                finish(fut.result())
            except KeyboardInterrupt:
                break
            except Exception as exc:  # pragma: no cover - work() never raises
                finish(Outcome(key, Status.FAILED, error=exc))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if cancel.is_set():
        report.cancelled = True
        for k in by_key:
            if k not in report.outcomes:
                finish(Outcome(k, Status.CANCELLED))
    report.wall_seconds = time.monotonic() - t0
    return report
