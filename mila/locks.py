"""Holding a lock on (environment, service, region) for the length of one action.

A state backend only offers atomic, non-blocking primitives (``acquire_lock``, ``heartbeat``,
``release``). This module adds what a run needs around them: waiting while someone else holds
the lock (telling the user who), taking over a lease that expired, giving up after a timeout
with :class:`LockHeld` (exit code 3), renewing the lease from a heartbeat thread while the
action runs, and releasing it whatever happens (success, failure, Ctrl-C).

A heartbeat that finds the lock gone (its lease expired and another run took it, or someone ran
``mila release-lock``) sets :attr:`LockHandle.lost`; the record write that follows is refused by
the backend (:class:`LockLost`), so a run that lost its lock can never overwrite the next
holder's record.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from mila.errors import Interrupted, LockHeld, LockLost, StateError
from mila.logs import get_logger
from mila.model import Lock, LockOwner, utcnow
from mila.protocols import StateBackend

log = get_logger("mila.locks")

#: Environment variables naming the CI job a run belongs to, first set wins.
CI_JOB_VARIABLES = ("GITHUB_RUN_ID", "CI_JOB_ID", "BUILDKITE_JOB_ID", "CODEBUILD_BUILD_ID")

#: The lease a run takes (``[state] lock_lease_seconds``), renewed every third of it: a killed
#: run's lock is free again within this time.
DEFAULT_TTL = timedelta(seconds=90)
#: How long a run waits for a held lock (``--lock-timeout``); longer than the lease, so a plain
#: rerun after a crash takes the dead run's lock over instead of giving up.
DEFAULT_TIMEOUT = timedelta(minutes=10)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return os.environ.get("USER") or "unknown"


def lock_owner() -> LockOwner:
    """A new owner for this run: a fresh uuid, user, host, pid and CI job id (when set)."""
    ci_job = next((os.environ[v] for v in CI_JOB_VARIABLES if os.environ.get(v)), None)
    return LockOwner(owner_id=uuid.uuid4().hex, user=current_user(), host=socket.gethostname(),
                     pid=os.getpid(), ci_job=ci_job)


def describe_holder(lock: Lock) -> str:
    """``alice@laptop (pid 4242, CI job 77) since 2026-01-02 10:00:00 UTC``."""
    o = lock.owner
    extra = f"pid {o.pid}" + (f", CI job {o.ci_job}" if o.ci_job else "")
    since = lock.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{o.user}@{o.host} ({extra}) since {since}"


def last_heartbeat(lock: Lock, lease: timedelta = DEFAULT_TTL) -> datetime:
    """When the holder last renewed ``lock`` (every lease ends ``lease`` after its renewal)."""
    return max(lock.acquired_at, lock.expires_at - lease)


def is_fresh(lock: Lock, lease: timedelta = DEFAULT_TTL) -> bool:
    """Whether the holder looks alive: its last heartbeat is under two beats old."""
    return not lock.expired() and utcnow() - last_heartbeat(lock, lease) < lease * 2 / 3


def release_command(lock: Lock) -> str:
    return f"mila release-lock -e {lock.environment} -s {lock.service} --force"


def describe_wait(lock: Lock, lease: timedelta = DEFAULT_TTL) -> str:
    """Holder, heartbeat age and the way out, for a run that gives up waiting."""
    age = max((utcnow() - last_heartbeat(lock, lease)).total_seconds(), 0.0)
    return (f"{describe_holder(lock)}, last heartbeat {age:.0f} s ago, lease ends "
            f"{lock.expires_at.strftime('%H:%M:%S UTC')}; if that run is dead, release it "
            f"with `{release_command(lock)}` or wait for the lease to end")


class LockHandle:
    """The lock a run holds; :attr:`lock` is always the latest lease (pass it to
    ``put_record``), :attr:`lost` turns true once a heartbeat found the lock gone."""

    def __init__(self, lock: Lock) -> None:
        self._lock = lock
        self._mutex = threading.Lock()
        self.lost_event = threading.Event()

    @property
    def lock(self) -> Lock:
        with self._mutex:
            return self._lock

    def _update(self, lock: Lock) -> None:
        with self._mutex:
            self._lock = lock

    @property
    def lost(self) -> bool:
        return self.lost_event.is_set()

    def __repr__(self) -> str:
        lock = self.lock
        return (f"LockHandle({lock.environment}/{lock.service}/{lock.region}, "
                f"expires {lock.expires_at.isoformat()}, lost={self.lost})")


def acquire_waiting(state: StateBackend, environment: str, service: str, region: str,
                    owner: LockOwner, *, ttl: timedelta = DEFAULT_TTL,
                    timeout: timedelta = DEFAULT_TIMEOUT,
                    on_wait: Callable[[Lock], None] | None = None, poll: float = 2.0,
                    cancel: threading.Event | None = None) -> Lock:
    """Take the lock, waiting up to ``timeout`` while another run holds it.

    ``on_wait(holder)`` is called when a holder is first seen and whenever it changes. A lease
    that expired is taken over by the backend's ``acquire_lock``. Raises :class:`LockHeld`
    (exit code 3) when the timeout runs out, naming the holder, and :class:`Interrupted` when
    ``cancel`` is set while waiting.
    """
    deadline = time.monotonic() + timeout.total_seconds()
    seen: tuple[str, object] | None = None
    while True:
        try:
            return state.acquire_lock(environment, service, region, owner, ttl)
        except LockHeld as exc:
            holder = exc.holder if isinstance(exc.holder, Lock) else None
            if holder is not None and holder.owner.owner_id == owner.owner_id \
                    and not holder.expired():
                # Our own lease: a request that took the lock was retried by the SDK after a
                # timeout and refused by its own success. Owner ids are unique per run and a
                # run takes each (service, region) lock once, so this lease is ours.
                log.info("lock already ours (retried request)", env=environment,
                         service=service, region=region)
                return holder
            key = (holder.owner.owner_id, holder.acquired_at) if holder else ("?", None)
            if key != seen:
                seen = key
                log.info("lock held, waiting", env=environment, service=service, region=region,
                         holder=describe_holder(holder) if holder else str(exc.holder))
                if on_wait is not None and holder is not None:
                    on_wait(holder)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                who = describe_wait(holder, ttl) if holder else str(exc.holder)
                raise LockHeld(
                    exc.holder,
                    f"the lock on {service} in {environment}/{region} is held by {who}; "
                    f"gave up after waiting {_human(timeout)}") from None
            delay = min(poll, remaining)
            if holder is not None:
                # Wake up right when the holder's lease ends, to take it over promptly.
                until_expiry = (holder.expires_at - utcnow()).total_seconds()
                if until_expiry >= 0:
                    delay = min(delay, until_expiry + 0.05)
            if cancel is not None:
                if cancel.wait(max(delay, 0.01)):
                    raise Interrupted(f"stopped waiting for the lock on {service} in "
                                      f"{environment}/{region}") from None
            else:
                time.sleep(max(delay, 0.01))


@contextmanager
def hold_lock(state: StateBackend, environment: str, service: str, region: str,
              owner: LockOwner, *, ttl: timedelta = DEFAULT_TTL,
              timeout: timedelta = DEFAULT_TIMEOUT,
              on_wait: Callable[[Lock], None] | None = None,
              poll: float = 2.0, cancel: threading.Event | None = None,
              on_lost: Callable[[], None] | None = None) -> Iterator[LockHandle]:
    """Hold the lock on (environment, service, region) for the ``with`` block.

    Waits like :func:`acquire_waiting`, then renews the lease every ``ttl / 3`` from a
    heartbeat thread, and releases it when the block ends, however it ends. A release that
    finds the lock already lost is not an error (the block's own writes were refused).
    ``on_lost()`` is called from the heartbeat thread when it finds the lock gone.
    """
    lock = acquire_waiting(state, environment, service, region, owner, ttl=ttl,
                           timeout=timeout, on_wait=on_wait, poll=poll, cancel=cancel)
    handle = LockHandle(lock)
    stop = threading.Event()
    thread = threading.Thread(target=_heartbeat, args=(state, handle, ttl, stop, on_lost),
                              name=f"mila-heartbeat-{service}-{region}", daemon=True)
    thread.start()
    try:
        yield handle
    finally:
        stop.set()
        thread.join()
        if not handle.lost:
            try:
                state.release(handle.lock)
            except LockLost:
                handle.lost_event.set()
            except StateError as exc:  # the lease expires by itself; say so, don't mask errors
                log.warning("could not release lock; it expires by itself", env=environment,
                            service=service, region=region, error=str(exc))


def _heartbeat(state: StateBackend, handle: LockHandle, ttl: timedelta,
               stop: threading.Event, on_lost: Callable[[], None] | None) -> None:
    interval = max(ttl.total_seconds() / 3, 0.01)

    def lost() -> None:
        handle.lost_event.set()
        if on_lost is not None:
            on_lost()

    while not stop.wait(interval):
        current = handle.lock
        try:
            handle._update(state.heartbeat(current, ttl))
        except LockLost:
            log.warning("lock lost", env=current.environment, service=current.service,
                        region=current.region)
            lost()
            return
        except Exception as exc:  # a network blip: retry at the next beat while the lease lasts
            if current.expired():
                lost()
                return
            log.warning("heartbeat failed, retrying", env=current.environment,
                        service=current.service, region=current.region, error=str(exc))


def _human(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


__all__ = ["CI_JOB_VARIABLES", "DEFAULT_TIMEOUT", "DEFAULT_TTL", "LockHandle", "acquire_waiting",
           "current_user", "describe_holder", "describe_wait", "hold_lock", "is_fresh",
           "last_heartbeat", "lock_owner", "release_command"]
