"""Carrying out a plan: one :class:`ActionRunner` per changing action, one method per step.

Each action, run as an orchestrator task:

1. takes the (environment, service, region) lock, waiting while someone else holds it;
2. **re-reads its record** (:meth:`ActionRunner.current_record`). A record left ``in_progress``
   belongs to a run that died or lost its lease (the lock is ours now): :meth:`recover` writes
   an ``interrupted`` history row for that attempt and sets the record back to ``failed``;
3. decides (:meth:`already_done`): if another run already deployed this checksum (or destroyed
   the service) the action ends ``skipped`` with a history row and no deployer call
   (:meth:`skip`); if the record moved on in any other way since the plan was made the action
   fails as stale (:class:`~mila.errors.ActionStale`) and writes nothing;
0. builds the service (before the lock: a build failure writes no state);
4. :meth:`begin`: marks the record ``in_progress`` (keeping the last successful checksum);
5. :meth:`run_deployer` with a :class:`~mila.protocols.DeployContext` (log under
   ``.mila/logs/<env>/<service>.<region>.log``); its ``cancel`` is set on Ctrl-C/SIGTERM and
   when the heartbeat finds the lock lost;
6. :meth:`succeed` (manifest, record, history) or :meth:`fail` (record ``failed``, history);
7. a run that lost its lock writes no record: :meth:`abandon` records the attempt as failed
   ("lock lost") and, if it can take the lock back, sets its ``in_progress`` record to
   ``failed`` — else the next holder does that through :meth:`recover`.

Every record write names the version it follows (:attr:`Record.version`) and the lock it holds,
so a run never overwrites a record another run wrote after it read it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TextIO

from mila.errors import ActionStale, DeployError, LockHeld, LockLost, MilaError
from mila.locks import LockHandle, hold_lock
from mila.logs import get_logger
from mila.model import (
    Action,
    ActionKind,
    DeployResult,
    HistoryEntry,
    LockOwner,
    Record,
    Status,
    Workspace,
    frozen_mapping,
    utcnow,
)
from mila.orchestrator import Done
from mila.parameters import resolve_parameters
from mila.private import open_private, private_dirs
from mila.protocols import DeployContext, read_record, record_with_history

if TYPE_CHECKING:
    from mila.deploy import Prepared, Reporter, RunOptions
    from mila.project import Project

log = get_logger("mila.runner")
ActionKey = tuple[str, str]


@dataclass
class RunShared:
    """What the actions of one run share: who runs it, and the outputs deployed so far."""

    project: Project
    prepared: Prepared
    options: RunOptions
    reporter: Reporter
    owner: LockOwner
    commit: str | None
    by: str
    outputs: dict[ActionKey, Mapping[str, str]] = field(default_factory=dict)
    mutex: threading.Lock = field(default_factory=threading.Lock)

    def dependency_outputs(self, ws: Workspace | None, region: str) -> dict[str, Mapping[str, str]]:
        if ws is None:
            return {}
        with self.mutex:
            return {d: self.outputs[(d, region)]
                    for d in self.project.graph.dependencies(ws.name, transitive=True)
                    if (d, region) in self.outputs}

    def set_outputs(self, key: ActionKey, outputs: Mapping[str, str]) -> None:
        with self.mutex:
            self.outputs[key] = outputs


def same_record(a: Record | None, b: Record | None) -> bool:
    """Whether ``b`` is still the record ``a`` was (nobody wrote it in between)."""
    if a is None or b is None:
        return a is b
    return (a.version, a.checksum, a.status, a.deployed_at) == \
        (b.version, b.checksum, b.status, b.deployed_at)


def _when(record: Record) -> str:
    at = record.deployed_at
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "an unknown time"


@contextmanager
def _linked(parent: threading.Event, child: threading.Event) -> Iterator[None]:
    """Set ``child`` when ``parent`` is set, for the ``with`` block.

    The watcher looks every 0.1 s and is not waited for at the end: joining it cost every
    action up to 0.1 s before its slot was free for the next one (the child of a finished
    action may still be set by a late look; nothing reads it any more)."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if parent.wait(0.1):
                child.set()
                return

    thread = threading.Thread(target=watch, name="mila-cancel-link", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


class ActionRunner:
    """Carries out one action (see the module docstring); call it to run it."""

    def __init__(self, run: RunShared, action: Action, cancel: threading.Event) -> None:
        self.run = run
        self.action = action
        self.key: ActionKey = action.key
        self.state = run.project.state
        self.ws = run.project.graph.workspaces.get(action.service)
        self.cancel = cancel  # the whole run's
        self.stop = threading.Event()  # this action's: run cancelled, or lock lost
        self.handle: LockHandle | None = None
        self.logfile: TextIO | None = None
        self.started = time.monotonic()
        self.checksum: str | None = action.checksum
        self.manifest: Mapping[str, Any] = {}

    def __call__(self) -> DeployResult | Done:
        from mila.deploy import build_before_lock, log_path

        a, run = self.action, self.run
        path = log_path(run.project, a)
        private_dirs(path.parent, run.project.config.mila_dir)
        run.reporter.started(self.key)
        with open_private(path) as logfile:
            if self.ws is not None and a.kind is not ActionKind.DESTROY:
                build_before_lock(run.project, self.ws, logfile,
                                  functools.partial(run.reporter.phase, self.key), self.cancel)
            return self.locked(logfile)

    def locked(self, logfile: TextIO) -> DeployResult | Done:
        """Everything done under the lock (see the module docstring)."""
        a, run = self.action, self.run
        with _linked(self.cancel, self.stop), \
                hold_lock(self.state, a.environment, a.service, a.region, run.owner,
                          ttl=run.options.lock_ttl, timeout=run.options.lock_timeout,
                          on_wait=lambda holder: run.reporter.waiting_for_lock(self.key, holder),
                          poll=run.options.lock_poll_seconds, cancel=self.cancel,
                          on_lost=self.stop.set) as handle:
            self.logfile, self.handle = logfile, handle
            run.reporter.phase(self.key, "locked")
            # the checksum to record: with the outputs its dependencies really have now
            self.checksum, self.manifest = run.prepared.final_checksum(
                a, run.dependency_outputs(self.ws, a.region))
            current = self.current_record()
            done = self.already_done(current)
            if done is not None:
                return self.skip(current, done)
            marker = self.begin(current)
            try:
                result = self.run_deployer(marker.data)
            except BaseException as exc:
                error = self.fail(marker, exc)
                if error is exc:
                    raise
                raise error from exc
            return self.succeed(marker, result)

    # ------------------------------------------------------------------ steps

    def current_record(self) -> Record | None:
        """The record as it is now that we hold the lock (an abandoned attempt recovered)."""
        a = self.action
        current = read_record(self.state, a.environment, a.service, a.region)
        if current is not None and current.status is Status.IN_PROGRESS:
            current = self.recover(current)
        return current

    def recover(self, abandoned: Record) -> Record:
        """``abandoned`` is ``in_progress`` while we hold the lock: its run died. Write an
        ``interrupted`` history row for it and set the record back to ``failed``."""
        a = self.action
        who = abandoned.started_by or "an earlier run"
        since = abandoned.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") \
            if abandoned.started_at else "an unknown time"
        message = f"interrupted: the attempt started by {who} at {since} never finished " \
                  f"(its run died or lost its lock); found by {self.run.by}"
        assert self.handle is not None
        restored = replace(abandoned, status=Status.FAILED, message=message,
                           version=abandoned.version + 1)
        record_with_history(self.state, restored, HistoryEntry(
            a.environment, a.service, a.region,
            ActionKind.DEPLOY if abandoned.checksum else ActionKind.FIRST_DEPLOY,
            Status.INTERRUPTED, None, utcnow(), abandoned.started_by, None, None, message),
            self.handle.lock)
        self._write(f"# {message}\n")
        log.warning("recovered an interrupted attempt", env=a.environment, service=a.service,
                    region=a.region, started_by=who)
        return restored

    def already_done(self, current: Record | None) -> str | None:
        """Why there is nothing to do (another run did it), or ``None`` to go on; raises
        :class:`ActionStale` when the record moved on in another way since the plan."""
        a = self.action
        planned = self.run.prepared.records.get(self.key)
        if a.kind is ActionKind.DESTROY:
            if current is None:
                return "already destroyed by another run"
        elif current is not None and current.status is Status.SUCCEEDED \
                and current.checksum == self.checksum \
                and not (self.run.prepared.options.get("force") and same_record(planned, current)):
            return f"already deployed by {current.deployed_by or 'another run'} at {_when(current)}"
        before = planned.checksum if planned else None
        if (planned is None) == (current is None) and (current is None
                                                       or current.checksum == before):
            return None
        if planned is None and current is not None and current.checksum is None:
            return None  # another run's first attempt failed: still ours to deploy
        if current is None:
            change = "it was destroyed"
        else:
            change = f"it now holds {str(current.checksum)[:12]}, deployed by " \
                     f"{current.deployed_by or 'another run'} at {_when(current)}"
        raise ActionStale(f"{a.service} in {a.environment}/{a.region} changed since the plan "
                          f"was made ({change}); nothing was done",
                          hint="run the command again for a new plan")

    def skip(self, current: Record | None, message: str) -> Done:
        a = self.action
        self.state.append_history(HistoryEntry(
            a.environment, a.service, a.region, a.kind, Status.SKIPPED, self.checksum, utcnow(),
            self.run.by, self.run.commit, 0.0, message))
        self._write(f"# skipped: {message}\n")
        outputs = current.outputs if current else frozen_mapping()
        if current is not None:
            self.run.set_outputs(self.key, outputs)
        return Done(message, DeployResult(stack_name=current.stack_name if current else None,
                                          outputs=outputs, changed=False, message=message))

    def begin(self, current: Record | None) -> Record:
        """Mark the record ``in_progress``: a crash from here on leaves it so, never half-written."""
        a, ws, now = self.action, self.ws, utcnow()
        marker = replace(current, status=Status.IN_PROGRESS, message=None,
                         version=current.version + 1, started_by=self.run.by, started_at=now) \
            if current else \
            Record(a.environment, a.service, a.region, None, Status.IN_PROGRESS, a.deployer,
                   stack_name=a.stack_name, depends_on=tuple(ws.depends_on) if ws else (),
                   version=1, started_by=self.run.by, started_at=now)
        assert self.handle is not None
        self.state.put_record(marker, self.handle.lock)
        self.run.project.pm.hook.mila_action_started(action=a, project=self.run.project)
        self.started = time.monotonic()
        self._write(f"# mila {a.kind.value} {a.service} in {a.environment}/{a.region} "
                    f"({a.reason})\n")
        return marker

    def run_deployer(self, data: Mapping[str, Any]) -> DeployResult:
        """Call the deployer; ``data`` is the record's (see ``DeployContext.data``)."""
        a, ws, run = self.action, self.ws, self.run
        from mila.build import workspace_packages
        from mila.variables import VariableResolver, context_variables

        deployer = run.project.deployer(a.deployer)
        dep_outputs = run.dependency_outputs(ws, a.region)
        prepared = run.prepared
        values, resolved = context_variables(
            prepared.resolver or VariableResolver(run.project), prepared.variables.get(self.key),
            ws, a.environment, a.region, dep_outputs)
        params = resolve_parameters(ws.parameters, service=ws.name, environment=a.environment,
                                    region=a.region, outputs=dep_outputs, variables=values) \
            if ws is not None and a.kind is not ActionKind.DESTROY else {}
        context = DeployContext(
            project=run.project.config.name, environment=prepared.environment,
            region=a.region, workspace=ws, root=run.project.root,
            parameters=frozen_mapping(params), dependency_outputs=frozen_mapping(dep_outputs),
            variables=values, resolved_variables=frozen_mapping(resolved),
            report=functools.partial(run.reporter.phase, self.key), log=self.logfile,
            cancel=self.stop,
            options=frozen_mapping({"disable_rollback": run.options.disable_rollback}),
            packages=frozen_mapping(workspace_packages(run.project, ws) if ws else {}),
            data=data)
        if a.kind is ActionKind.DESTROY:
            return deployer.destroy(a, context)
        result = deployer.deploy(a, context)
        check_deployer_data(a.deployer, result.data)
        return result

    def succeed(self, marker: Record, result: DeployResult) -> DeployResult:
        a, run, ws = self.action, self.run, self.ws
        duration = round(time.monotonic() - self.started, 3)
        assert self.handle is not None
        try:
            if self.handle.lost:
                raise LockLost("the heartbeat found the lock gone")
            entry = HistoryEntry(
                a.environment, a.service, a.region, a.kind, Status.SUCCEEDED, self.checksum,
                utcnow(), run.by, run.commit, duration, result.message or None)
            if a.kind is ActionKind.DESTROY:
                self.state.delete_record(a.environment, a.service, a.region, self.handle.lock)
                self.state.append_history(entry)
            else:
                manifest_key = self.state.put_manifest(a.environment, a.service, a.region,
                                                       self.manifest)
                record_with_history(self.state, replace(
                    marker, checksum=self.checksum, status=Status.SUCCEEDED,
                    stack_name=result.stack_name or a.stack_name,
                    outputs=frozen_mapping(result.outputs), data=frozen_mapping(result.data),
                    commit=run.commit, deployed_by=run.by,
                    deployed_at=entry.at, duration_seconds=duration, manifest_key=manifest_key,
                    depends_on=tuple(ws.depends_on) if ws else (), version=marker.version + 1),
                    entry, self.handle.lock)
                run.set_outputs(self.key, result.outputs)
        except LockLost:
            raise self.abandon(marker, duration) from None
        note = f": {result.message}" if result.message else ""
        self._write(f"# succeeded in {duration:.1f}s{note}\n")
        return result

    def fail(self, marker: Record, exc: BaseException) -> BaseException:
        """Record the failure; returns the error the task ends with."""
        a, run = self.action, self.run
        duration = round(time.monotonic() - self.started, 3)
        assert self.handle is not None
        if self.handle.lost:
            return self.abandon(marker, duration)
        message = str(exc) if isinstance(exc, MilaError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, DeployError) and exc.details:
            self._write(exc.details.rstrip() + "\n")
        self._write(f"# failed after {duration:.1f}s: {message}\n")
        log.warning("action failed", env=a.environment, service=a.service, region=a.region,
                    error=message, shown_by_cli=True)
        try:
            record_with_history(
                self.state, replace(marker, status=Status.FAILED, message=message[:1000],
                                    deployed_by=run.by, version=marker.version + 1),
                HistoryEntry(a.environment, a.service, a.region, a.kind, Status.FAILED,
                             a.checksum, utcnow(), run.by, run.commit, duration,
                             message[:1000]),
                self.handle.lock)
        except LockLost:
            return self.abandon(marker, duration)
        return exc

    def abandon(self, marker: Record, duration: float) -> DeployError:
        """The lock was lost (lease expired and taken over, or force-released): record the
        attempt as failed and, if the lock can be taken back, set the record back from
        ``in_progress``; the run's result is not written."""
        a, run = self.action, self.run
        message = "lock lost: the lease expired or was released while the action ran; " \
                  "its result was not recorded"
        self._write(f"# {message}\n")
        log.warning("lock lost", env=a.environment, service=a.service, region=a.region)
        self.state.append_history(HistoryEntry(
            a.environment, a.service, a.region, a.kind, Status.FAILED, a.checksum, utcnow(),
            run.by, run.commit, duration, message))
        try:
            lock = self.state.acquire_lock(a.environment, a.service, a.region, run.owner,
                                           run.options.lock_ttl)
        except LockHeld:
            pass  # the new holder finds our in_progress record and recovers it
        else:
            try:
                current = read_record(self.state, a.environment, a.service, a.region)
                if current is not None and current.version == marker.version:
                    self.state.put_record(replace(marker, status=Status.FAILED,
                                                  message=message, version=marker.version + 1),
                                          lock)
            finally:
                self.state.release(lock)
        return DeployError(message, hint="check who else deploys this environment, then run "
                                         "again (see `mila history`)")

    def _write(self, text: str) -> None:
        if self.logfile is not None:
            self.logfile.write(text)
            self.logfile.flush()


def new_run(project: Project, prepared: Prepared, options: RunOptions,
            reporter: Reporter) -> RunShared:
    """What the actions of one run (or one worker) share: its lock owner, commit, operator and
    the outputs known so far (the records' at plan time)."""
    from mila.deploy import current_commit
    from mila.environments import operator
    from mila.locks import lock_owner

    return RunShared(project, prepared, options, reporter, lock_owner(),
                     current_commit(project.root), operator(),
                     {k: r.outputs for k, r in prepared.records.items()})


def run_actions(project: Project, prepared: Prepared, options: RunOptions, reporter: Reporter,
                cancel: threading.Event | None) -> Any:
    """Run every changing action of the plan as orchestrator tasks; returns the report."""
    from mila.orchestrator import Task, run_tasks

    plan = prepared.plan
    run = new_run(project, prepared, options, reporter)
    actions = {a.key: a for a in plan.actions if a.kind.changes}

    def task(action: Action, cancel_event: threading.Event) -> DeployResult | Done:
        return ActionRunner(run, action, cancel_event)()

    def finished(outcome: Any) -> None:
        report_finished(project, reporter, actions[outcome.key], outcome)

    tasks = [Task(key, functools.partial(task, a),
                  tuple(d for d in plan.edges.get(key, ()) if d in actions))
             for key, a in actions.items()]
    return run_tasks(tasks, options.concurrency, cancel=cancel, on_finish=finished)


DATA_LIMIT = 16 * 1024  # bytes of JSON: data rides in every record read and written


def check_deployer_data(deployer: str, data: Any) -> None:
    """Refuse a ``DeployResult.data`` that cannot be stored: not a mapping with string keys,
    not JSON-serialisable, or over :data:`DATA_LIMIT` (a bug of the deployer: the action fails)."""
    import json

    from mila.state_json import plain

    problem = ""
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        problem = "is not a mapping with string keys"
    else:
        try:
            size = len(json.dumps(plain(data), allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            problem = f"is not JSON-serialisable ({exc})"
        else:
            if size > DATA_LIMIT:
                problem = f"is {size} bytes as JSON, over the limit of {DATA_LIMIT}"
    if problem:
        raise DeployError(f"deployer '{deployer}' returned DeployResult.data that {problem}; "
                          "nothing of it was recorded",
                          hint="report this to the deployer's author: data must be a small "
                               "JSON mapping (see docs/writing-a-deployer.md)")


def report_finished(project: Project, reporter: Reporter, action: Action, outcome: Any) -> None:
    """Tell the reporter and the ``mila_action_finished`` hooks how an action ended."""
    error = outcome.error
    message = ""
    if error is not None:
        message = str(error) if isinstance(error, MilaError) else f"{type(error).__name__}: {error}"
    elif outcome.status is Status.SKIPPED:
        message = outcome.message or f"{outcome.blocked_by[0]} in {outcome.blocked_by[1]} failed"
    reporter.finished(outcome.key, outcome.status, message.splitlines()[0] if message else "")
    try:
        project.pm.hook.mila_action_finished(action=action, status=outcome.status,
                                             result=outcome.result, error=message or None,
                                             project=project)
    except Exception as exc:  # notifications never fail a run
        log.warning("mila_action_finished hook failed", error=repr(exc))
