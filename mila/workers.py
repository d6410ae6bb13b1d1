"""One saved plan carried out by many processes at once (``mila apply PLAN --worker``).

Every worker runs the same command on the same plan file; the state is the only coordinator.
A worker loops over the plan's changing actions, reading the environment's records once a round:

* an action whose record was written *after the plan* (its ``version`` is past the one the
  plan file saw) and says ``succeeded`` — or, for a destroy, whose record is gone — was done by
  someone: it counts as done (``skipped``, "done by another worker");
* one whose record says ``failed`` after the plan failed in another worker (confirmed under its
  lock, so an attempt being recovered is not mistaken for a failure): it is ``failed`` here
  too, and what depends on it is skipped;
* one whose dependencies are all done (by anyone) is tried without waiting for its lock: the
  :class:`~mila.runner.ActionRunner` takes the lock or the worker moves on to another action
  and comes back next round. Under the lock the runner re-reads the record (exactly once per
  change), so two workers never deploy the same action, and a worker killed midway leaves a
  lease that expires: another worker then takes the action over (``interrupted`` row first).

A worker exits when every action of the plan is done by someone or blocked by a failure, and
ends with the plan's overall result (0 everything succeeded, 1 something failed), so every
worker of a CI matrix reports the same outcome.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mila.errors import DeployError, LockHeld, PlanStale
from mila.model import Action, ActionKind, Record, Status
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


class Worker:
    """One worker's loop (see the module docstring); :meth:`run` returns the plan's report."""

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
        self.cancel = cancel
        self.report = RunReport()
        self.pending = set(work.actions)
        self.running: dict[Future[Outcome], ActionKey] = {}
        self.retry_at: dict[ActionKey, float] = {}
        self.offset = random.randrange(1 << 30)

    def run(self) -> RunReport:
        t0 = time.monotonic()
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="mila-worker")
        try:
            while (self.pending or self.running) and not self.cancel.is_set():
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

    def schedule(self, pool: ThreadPoolExecutor) -> None:
        """Read the records once, settle what others did, start what is ready and free."""
        records = {(r.service, r.region): r for r in self.state.records(self.environment)}
        for key, record in records.items():  # dependencies deployed by other workers
            if record.status is Status.SUCCEEDED:
                self.run_shared.set_outputs(key, record.outputs)
        in_flight = set(self.running.values())
        todo = sorted(self.pending - in_flight, key=self.work.order.__getitem__)
        # Each worker starts its scan at its own place in the plan, so workers rarely reach
        # for the same free action at once (a lost race costs a lock attempt and a retry).
        start = self.offset % len(todo) if todo else 0
        for key in todo[start:] + todo[:start]:
            verdict = self.work.verdict(key, records.get(key))
            if verdict == "done":
                self.finish(Outcome(key, Status.SKIPPED, message=DONE_ELSEWHERE))
            elif verdict == "failed" and self.failed_elsewhere(key):
                why = getattr(records.get(key), "message", None) or "see `mila history`"
                self.finish(Outcome(key, Status.FAILED,
                                    error=DeployError(f"failed in another worker: {why}")))
            elif self.blocked_by(key) is not None:
                self.finish(Outcome(key, Status.SKIPPED, blocked_by=self.blocked_by(key)))
            elif self.ready(key) and len(self.running) < self.concurrency \
                    and time.monotonic() >= self.retry_at.get(key, 0.0):
                self.running[pool.submit(self.attempt, key)] = key

    def collect(self) -> None:
        """Wait for an action to end (or a poll interval) and settle what ended."""
        if not self.running:
            self.cancel.wait(self.poll)
            return
        done, _ = wait(self.running, timeout=self.poll, return_when=FIRST_COMPLETED)
        for fut in done:
            self.settle(fut, fut.result())

    def settle(self, fut: Future[Outcome], outcome: Outcome) -> None:
        key = self.running.pop(fut)
        if isinstance(outcome.error, LockHeld) and not self.cancel.is_set():
            self.retry_at[key] = time.monotonic() + self.poll  # someone works on it: later
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
