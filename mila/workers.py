"""One saved plan carried out by many processes at once (``mila apply PLAN --worker``).

Every worker runs the same command on the same plan file; the state is the only coordinator.
A worker starts from the records its plan check read; it reads them again when a slot is
free and its last read is over ``poll`` (1 s) old, and — while it has a free slot and nothing
it can start — after 0.05 s, doubling while nothing changes, up to ``poll`` (or sooner: just
after the end it expects of an action another worker carries out, going by the durations of
its own). From the last read:

* an action whose record was written *after the plan* (its ``version`` is past the one the
  plan file saw) and says ``succeeded`` — or, for a destroy, whose record is gone — was done by
  someone: it counts as done (``skipped``, "done by another worker");
* one whose record says ``failed`` after the plan failed in another worker (confirmed under its
  lock, so an attempt being recovered is not mistaken for a failure): it is ``failed`` here
  too, and what depends on it is skipped;
* one that another run set ``in_progress`` after the plan is being carried out elsewhere: its
  lock is not tried until a third of a lease later (a killed worker's lease must end first);
* one whose dependencies are all done (by anyone) is started in a free slot at once, without
  reading again: the next one after this worker's last pick in plan order, or — when another
  worker got there first — the middle of the longest run of startable actions, so workers
  spread over the plan. It is tried without waiting for its lock: the
  :class:`~mila.runner.ActionRunner` takes the lock or the worker moves on to another action
  and comes back later. Under the lock the runner re-reads the record (exactly once per
  change), so two workers never deploy the same action, and a worker killed midway leaves a
  lease that expires: another worker then takes the action over (``interrupted`` row first).

A worker exits when every action of the plan is done by someone or blocked by a failure, and
ends with the plan's overall result (0 everything succeeded, 1 something failed), so every
worker of a CI matrix reports the same outcome.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mila.errors import DeployError, LockHeld, PlanStale
from mila.model import Action, ActionKind, Record, Status, utcnow
from mila.orchestrator import Outcome, RunReport

if TYPE_CHECKING:
    from mila.deploy import Prepared, Reporter, RunOptions
    from mila.project import Project
    from mila.runner import RunShared

ActionKey = tuple[str, str]
DONE_ELSEWHERE = "done by another worker"


@dataclass(frozen=True)
class WorkerPlan:
    """The saved plan's changing actions, their dependencies and the record versions the plan
    file saw (what "written after the plan" is measured against)."""

    actions: Mapping[ActionKey, Action]
    deps: Mapping[ActionKey, tuple[ActionKey, ...]]
    planned_versions: Mapping[ActionKey, int]
    order: Mapping[ActionKey, int]

    def verdict(self, key: ActionKey, record: Record | None) -> str:
        """``done``, ``failed`` (to be confirmed under the lock) or ``open``."""
        action, planned = self.actions[key], self.planned_versions.get(key, 0)
        if action.kind is ActionKind.DESTROY:
            return "done" if record is None else \
                "failed" if record.status is Status.FAILED and record.version > planned else "open"
        if record is None or record.version <= planned:
            return "open"
        if record.status is Status.SUCCEEDED:
            return "done"
        return "failed" if record.status is Status.FAILED else "open"


def worker_plan(saved: Mapping[str, Any], current: Prepared) -> WorkerPlan:
    """The saved plan's changing actions, as the current code and state know them; refuses
    (:class:`PlanStale`) when the code changed since the plan was made."""
    by_key = {a.key: a for a in current.plan.actions}
    actions: dict[ActionKey, Action] = {}
    versions: dict[ActionKey, int] = {}
    for row in saved["actions"]:
        kind = ActionKind(row["action"])
        if not kind.changes:
            continue
        key = (row["service"], row["region"])
        versions[key] = int(row.get("record_version") or 0)
        now = by_key.get(key)
        if kind is ActionKind.DESTROY:
            # gone from the current plan: its record is gone, destroyed by another worker
            actions[key] = now if now is not None else Action(
                saved["environment"], key[0], key[1], kind, None, row.get("previous_checksum"),
                "", reason="destroyed by another worker")
            continue
        inputs = row.get("inputs_checksum") or row.get("checksum")
        now_inputs = current.inputs_checksum(now) if now is not None else None
        if now is None or now_inputs != inputs:
            raise PlanStale(f"the code changed since this plan was made ({key[0]}/{key[1]})",
                            hint="make a new plan with `mila deploy --plan-out` for the workers")
        actions[key] = replace(now, kind=kind)
    deps = {k: tuple(d for d in current.plan.edges.get(k, ()) if d in actions) for k in actions}
    order = {k: i for i, k in enumerate(actions)}
    return WorkerPlan(actions, deps, versions, order)


#: the shortest wait between two reads of the state while a worker waits for others
IDLE_FIRST = 0.05
#: ... and never shorter than this many times the last read took (a backend under load, or a
#: big environment, is read less often)
READ_COST_FACTOR = 5


def longest_run_middle(positions: list[int], n: int) -> int:
    """The middle (give or take a sixth, at random) of the longest run of consecutive
    ``positions`` (sorted, of ``range(n)``; a run may wrap around from ``n - 1`` to 0)."""
    runs: list[tuple[int, int]] = []  # (length, first)
    first = prev = positions[0]
    for p in positions[1:]:
        if p != prev + 1:
            runs.append((prev - first + 1, first))
            first = p
        prev = p
    runs.append((prev - first + 1, first))
    if len(runs) > 1 and positions[0] == 0 and positions[-1] == n - 1:
        length, first = runs.pop()
        runs[0] = (runs[0][0] + length, first)
    length, first = max(runs)
    jitter = random.randint(-(length // 6), length // 6)
    return (first + length // 2 + jitter) % n


class Worker:
    """One worker's loop (see the module docstring); :meth:`run` returns the plan's report.

    A worker reads the environment's records (:meth:`read_state`) when it starts, then at most
    every ``poll`` seconds while its slots are busy: a freed slot takes the next action the
    last read left open, without reading again (the lock and the re-read under it keep every
    action exactly once; a stale pick costs one refused lock). With a free slot and nothing it
    can start (dependencies or actions other workers are carrying out), it reads again after
    ``IDLE_FIRST`` seconds, doubling while nothing changes, up to ``poll``.
    """

    def __init__(self, project: Project, prepared: Prepared, work: WorkerPlan,
                 options: RunOptions, reporter: Reporter, cancel: threading.Event,
                 poll: float = 1.0) -> None:
        from mila.runner import new_run

        self.project, self.work, self.reporter, self.poll = project, work, reporter, poll
        self.state = project.state
        self.environment = prepared.environment.name
        # try each lock once: a held one is somebody else's work for now
        self.run_shared: RunShared = new_run(project, prepared, replace(
            options, lock_timeout=type(options.lock_timeout)(0)), reporter)
        self.concurrency = options.concurrency
        # an action another worker is carrying out can only be taken over once its lease
        # ended: no point in trying its lock more often than its holder renews it
        self.busy_retry = max(poll, options.lock_ttl.total_seconds() / 3)
        self.cancel = cancel
        self.report = RunReport()
        self.pending = set(work.actions)
        self.running: dict[Future[Outcome], ActionKey] = {}
        self.retry_at: dict[ActionKey, float] = {}
        # the first view: the records the plan check just read
        self.records: dict[ActionKey, Record] = dict(prepared.records)
        self.read_at = time.monotonic()  # monotonic time of the last read of the state
        self.next_read = math.inf  # ... and of the next one, while waiting for others
        for key, record in self.records.items():
            if record.status is Status.SUCCEEDED:
                self.run_shared.set_outputs(key, record.outputs)
        self.idle_wait = IDLE_FIRST
        self.waiting = False  # free slots, and pending actions this worker cannot start
        # Each worker starts at its own random place in the plan and walks on from there
        # (see choose), so workers rarely reach for the same free action.
        self.cursor: int | None = random.randrange(len(work.actions)) - 1 \
            if work.actions else None

    def run(self) -> RunReport:
        t0 = time.monotonic()
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="mila-worker")
        try:
            while (self.pending or self.running) and not self.cancel.is_set():
                now = time.monotonic()
                if now >= self.next_read or (len(self.running) < self.concurrency
                                             and now - self.read_at >= self.poll):
                    self.read_state()
                self.schedule(pool)
                self.collect()
        except KeyboardInterrupt as exc:
            self.cancel.set()
            self.report.signal = getattr(exc, "signum", None)
        finally:
            for fut in list(self.running):
                self.settle(fut, fut.result())
            pool.shutdown(wait=True)
        if self.cancel.is_set():
            self.report.cancelled = True
            for key in sorted(self.pending, key=self.work.order.__getitem__):
                self.finish(Outcome(key, Status.CANCELLED))
        self.report.wall_seconds = time.monotonic() - t0
        return self.report

    # ------------------------------------------------------------------ one round

    def read_state(self) -> None:
        """Read the environment's records once: what others did, the outputs they recorded."""
        t0 = time.monotonic()
        records = {(r.service, r.region): r for r in self.state.records(self.environment)}
        now = time.monotonic()
        changed = {k: r.version for k, r in records.items()} != \
            {k: r.version for k, r in self.records.items()}
        self.records = records
        for key, record in records.items():  # dependencies deployed by other workers
            if record.status is Status.SUCCEEDED:
                self.run_shared.set_outputs(key, record.outputs)
        floor = max(IDLE_FIRST, READ_COST_FACTOR * (now - t0))
        self.idle_wait = floor if changed or not self.waiting else \
            min(max(self.idle_wait * 2, floor), self.poll)
        self.read_at, self.next_read = now, math.inf

    def schedule(self, pool: ThreadPoolExecutor) -> None:
        """Settle what others did (as last read), start what is ready and free."""
        self.settle_known()
        now = time.monotonic()
        idle = self.pending - set(self.running.values())
        startable = [k for k in idle if self.ready(k) and not self.held(k, now)]
        for key in self.choose(startable, self.concurrency - len(self.running)):
            self.running[pool.submit(self.attempt, key)] = key
        self.waiting = len(startable) < len(idle) and len(self.running) < self.concurrency
        if not self.waiting:
            self.next_read = math.inf
            return
        wait_for = self.idle_wait
        expected = self.next_expected_end()
        if expected is not None:  # read right after the next end another worker should see
            wait_for = min(wait_for, max(expected + 0.02, IDLE_FIRST))
        self.next_read = min(self.next_read, time.monotonic() + wait_for)

    def next_expected_end(self) -> float | None:
        """In how many seconds the first action another worker carries out should end, going
        by the durations of this worker's own actions; ``None`` when unknown or overdue."""
        durations = sorted(o.duration for o in self.report.outcomes.values()
                           if o.status is Status.SUCCEEDED and o.duration > 0)
        if not durations:
            return None
        typical, now = durations[len(durations) // 2], utcnow()
        ends = [(r.started_at - now).total_seconds() + typical for k, r in self.records.items()
                if k in self.pending and r.started_at is not None and self.busy_elsewhere(k)]
        return min(ends) if ends and min(ends) > 0 else None

    def choose(self, startable: list[ActionKey], free: int) -> list[ActionKey]:
        """Up to ``free`` of ``startable``: the next ones in plan order after this worker's
        last pick; where that one is not free (another worker got there), the middle of the
        longest run of startable actions, so that workers spread over the plan instead of
        reaching for the same actions."""
        n = len(self.work.order)
        at = {self.work.order[k]: k for k in startable}
        picks: list[ActionKey] = []
        while len(picks) < free and at:
            nxt = (self.cursor + 1) % n if self.cursor is not None else None
            if nxt not in at:
                nxt = longest_run_middle(sorted(at), n)
            self.cursor = nxt
            picks.append(at.pop(nxt))
        return picks

    def settle_known(self) -> None:
        """Finish what the last read says is done or failed elsewhere, and what that blocks
        (in plan order: a chain of blocked actions ends in one pass)."""
        in_flight = set(self.running.values())
        for key in sorted(self.pending - in_flight, key=self.work.order.__getitem__):
            verdict = self.work.verdict(key, self.records.get(key))
            blocked = self.blocked_by(key)
            if verdict == "done":
                self.finish(Outcome(key, Status.SKIPPED, message=DONE_ELSEWHERE))
            elif verdict == "failed" and self.failed_elsewhere(key):
                why = getattr(self.records.get(key), "message", None) or "see `mila history`"
                self.finish(Outcome(key, Status.FAILED,
                                    error=DeployError(f"failed in another worker: {why}")))
            elif blocked is not None:
                self.finish(Outcome(key, Status.SKIPPED, blocked_by=blocked))

    def collect(self) -> None:
        """Wait for an action to end, the next read or the next retry; settle what ended."""
        wake = min([self.next_read, *(t for k, t in self.retry_at.items() if k in self.pending
                                      and t > time.monotonic())])
        timeout = min(max(wake - time.monotonic(), 0.0), self.poll)
        if not self.pending and not self.running:
            return
        if not self.running:
            self.cancel.wait(timeout)
            return
        done, _ = wait(self.running, timeout=timeout, return_when=FIRST_COMPLETED)
        for fut in done:
            self.settle(fut, fut.result())

    def settle(self, fut: Future[Outcome], outcome: Outcome) -> None:
        key = self.running.pop(fut)
        if isinstance(outcome.error, LockHeld) and not self.cancel.is_set():
            # someone works on it: later (the next reads say when it is done)
            self.retry_at[key] = time.monotonic() + (
                self.busy_retry if self.busy_elsewhere(key) else self.poll)
            self.cursor = None  # another worker works here: move elsewhere
            return
        self.finish(outcome)

    def attempt(self, key: ActionKey) -> Outcome:
        from mila.orchestrator import Done
        from mila.runner import ActionRunner

        outcome = Outcome(key, Status.SUCCEEDED, started_at=time.monotonic())
        try:
            result = ActionRunner(self.run_shared, self.work.actions[key], self.cancel)()
            if isinstance(result, Done):
                outcome.status, outcome.message, outcome.result = \
                    Status.SKIPPED, result.message, result.result
            else:
                outcome.result = result
        except BaseException as exc:  # a failure is data, as in the orchestrator
            outcome.status = Status.CANCELLED if self.cancel.is_set() else Status.FAILED
            outcome.error = exc
        outcome.ended_at = time.monotonic()
        return outcome

    # ------------------------------------------------------------------ rules

    def busy_elsewhere(self, key: ActionKey) -> bool:
        """The last read shows another run carrying ``key`` out (``in_progress`` since the
        plan): it is tried again only when its lease may have ended (a dead worker's)."""
        record = self.records.get(key)
        return record is not None and record.status is Status.IN_PROGRESS \
            and record.version > self.work.planned_versions.get(key, 0)

    def held(self, key: ActionKey, now: float) -> bool:
        """Another run holds ``key``, as far as this worker knows: wait before trying its lock
        (``retry_at``; at first sight of it ``in_progress``, a third of a lease)."""
        if key not in self.retry_at and self.busy_elsewhere(key):
            self.retry_at[key] = now + self.busy_retry
        return now < self.retry_at.get(key, 0.0)

    def ready(self, key: ActionKey) -> bool:
        return all(self.report.outcomes.get(d) is not None and self.report.outcomes[d].ok
                   for d in self.work.deps[key])

    def blocked_by(self, key: ActionKey) -> Hashable | None:
        for d in self.work.deps[key]:
            o = self.report.outcomes.get(d)
            if o is not None and not o.ok:
                return o.blocked_by if o.status is Status.SKIPPED and o.blocked_by else d
        return None

    def failed_elsewhere(self, key: ActionKey) -> bool:
        """A ``failed`` record written after the plan, confirmed while holding its lock (a run
        recovering an interrupted attempt writes ``failed`` just before it retries)."""
        environment, (service, region) = self.environment, key
        try:
            lock = self.state.acquire_lock(environment, service, region, self.run_shared.owner,
                                           self.run_shared.options.lock_ttl)
        except LockHeld:
            return False
        try:
            from mila.protocols import read_record

            record = read_record(self.state, environment, service, region)
            return self.work.verdict(key, record) == "failed"
        finally:
            self.state.release(lock)

    def finish(self, outcome: Outcome) -> None:
        from mila.runner import report_finished

        key: ActionKey = outcome.key  # type: ignore[assignment]
        self.pending.discard(key)
        self.report.outcomes[key] = outcome
        report_finished(self.project, self.reporter, self.work.actions[key], outcome)
