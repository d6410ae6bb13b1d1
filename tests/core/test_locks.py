"""mila.locks: waiting, takeover, heartbeat, release — and races between threads and processes.

Races run against the ``local`` backend and, on the serialised sandbox, the ``aws`` backend
(plain moto is not a concurrency oracle). Each holder records the wall-clock interval it spent
inside the lock and increments a counter kept in a record; the intervals must never overlap,
the counter must equal the number of holds, and a write with a released lock must be refused.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mila_local.state import LocalState

from mila.errors import EXIT_LOCKED, Interrupted, LockHeld, LockLost
from mila.locks import CI_JOB_VARIABLES, describe_holder, hold_lock, lock_owner
from mila.model import Lock
from mila.protocols import StateBackend
from mila.testing.contracts import make_owner, make_record

REGION = "eu-west-1"
ENV = "dev"


# ----------------------------------------------------------------------------- backends


def local_spec(tmp_path: Path) -> dict[str, Any]:
    return {"kind": "local", "path": str(tmp_path / ".mila" / "state.db")}


def build_backend(spec: dict[str, Any]) -> StateBackend:
    """Build a backend from a JSON-able spec (so a child process can build the same one)."""
    if spec["kind"] == "local":
        return LocalState(Path(spec["path"]))
    from mila_aws.state import AwsState

    return AwsState(spec["table"], spec["bucket"], spec["region"])


@pytest.fixture(params=["local", "aws"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """A backend spec, initialised, with environment ``dev`` and a counter record."""
    if request.param == "local":
        spec = {**local_spec(tmp_path), "poll": 0.01, "holds": 2}
    else:
        if "sandbox" not in request.fixturenames and not _has_fixture(request, "sandbox"):
            pytest.skip("the sandbox fixture is not available")
        request.getfixturevalue("sandbox")
        # The serialised server answers one request at a time (~10 ms each): waiters poll
        # less often and each competitor holds the lock once, to keep the test fast.
        spec = {"kind": "aws", "table": "locks-state", "bucket": "locks-checksums",
                "region": REGION, "poll": 0.3, "holds": 1}
    seed(build_backend(spec))
    return spec


def seed(backend: StateBackend) -> StateBackend:
    """Initialise, create ``dev`` and a counter record at 0."""
    backend.init()
    backend.create_environment(ENV, [REGION], "test")
    lock = backend.acquire_lock(ENV, "counter", REGION, make_owner(), timedelta(minutes=1))
    backend.put_record(make_record(ENV, "counter", REGION, checksum="0"), lock)
    backend.release(lock)
    return backend


def _has_fixture(request: pytest.FixtureRequest, name: str) -> bool:
    try:
        request._fixturemanager.getfixturedefs(name, request.node)  # type: ignore[attr-defined]
    except Exception:
        return False
    return bool(request._fixturemanager.getfixturedefs(name, request.node))  # type: ignore[attr-defined]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    s = LocalState(tmp_path / ".mila" / "state.db")
    seed(s)
    yield s


def counter(backend: StateBackend) -> int:
    (record,) = [r for r in backend.records(ENV) if r.service == "counter"]
    return int(record.checksum or 0)


def increment(backend: StateBackend, lock: Lock, pause: float = 0.0) -> None:
    """Read-modify-write of the counter record under ``lock``."""
    value = counter(backend)
    if pause:
        time.sleep(pause)
    backend.put_record(make_record(ENV, "counter", REGION, checksum=str(value + 1),
                                   message=lock.owner.owner_id), lock)


def assert_disjoint(intervals: list[tuple[float, float]]) -> None:
    ordered = sorted(intervals)
    for (s1, e1), (s2, e2) in itertools.pairwise(ordered):
        assert e1 <= s2, f"two holders at once: {(s1, e1)} and {(s2, e2)}"


# ----------------------------------------------------------------------------- owner


def test_lock_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in CI_JOB_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    a, b = lock_owner(), lock_owner()
    assert a.owner_id != b.owner_id and len(a.owner_id) == 32
    assert a.pid == os.getpid() and a.user and a.host and a.ci_job is None
    monkeypatch.setenv("CI_JOB_ID", "4711")
    assert lock_owner().ci_job == "4711"
    monkeypatch.setenv("GITHUB_RUN_ID", "99")
    assert lock_owner().ci_job == "99"


# ----------------------------------------------------------------------------- hold_lock


def test_hold_lock_releases_on_success_error_and_ctrl_c(state: LocalState) -> None:
    with hold_lock(state, ENV, "api", REGION, lock_owner()) as handle:
        assert state.locks(ENV) == [handle.lock]
        assert not handle.lost
    assert state.locks(ENV) == []
    for exc in (RuntimeError("deploy failed"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), hold_lock(state, ENV, "api", REGION, lock_owner()):
            raise exc
        assert state.locks(ENV) == []


def test_waits_for_the_holder_then_takes_the_lock(state: LocalState) -> None:
    holder = state.acquire_lock(ENV, "api", REGION, make_owner("alice"), timedelta(minutes=5))
    seen: list[Lock] = []
    threading.Timer(0.4, lambda: state.release(holder)).start()
    started = time.monotonic()
    with hold_lock(state, ENV, "api", REGION, lock_owner(), on_wait=seen.append,
                   poll=0.05, timeout=timedelta(seconds=10)) as handle:
        waited = time.monotonic() - started
        assert handle.lock.owner.user != "alice"
    assert 0.3 < waited < 10
    assert [h.owner.user for h in seen] == ["alice"]  # once per holder, not once per poll


def test_on_wait_called_again_when_the_holder_changes(state: LocalState) -> None:
    first = state.acquire_lock(ENV, "api", REGION, make_owner("first"), timedelta(minutes=5))
    seen: list[str] = []

    def handover() -> None:
        state.release(first)
        second = state.acquire_lock(ENV, "api", REGION, make_owner("second"), timedelta(minutes=5))
        threading.Timer(0.3, lambda: state.release(second)).start()

    threading.Timer(0.3, handover).start()
    with hold_lock(state, ENV, "api", REGION, lock_owner(), on_wait=lambda h: seen.append(h.owner.user),
                   poll=0.05, timeout=timedelta(seconds=10)):
        pass
    assert seen == ["first", "second"]


def test_times_out_with_exit_code_3_naming_the_holder(state: LocalState) -> None:
    owner = replace(make_owner("alice"), ci_job="run-77")
    state.acquire_lock(ENV, "api", REGION, owner, timedelta(minutes=5))
    started = time.monotonic()
    with pytest.raises(LockHeld) as info, hold_lock(state, ENV, "api", REGION, lock_owner(),
                                                    timeout=timedelta(seconds=0.3), poll=0.05):
        pytest.fail("must not get the lock")
    assert 0.3 <= time.monotonic() - started < 10
    assert info.value.exit_code == EXIT_LOCKED == 3
    message = str(info.value)
    assert "alice@contract-host" in message and "pid 4242" in message and "run-77" in message
    assert "api" in message and "dev" in message
    assert "since" in describe_holder(info.value.holder)


def test_cancel_stops_waiting(state: LocalState) -> None:
    state.acquire_lock(ENV, "api", REGION, make_owner(), timedelta(minutes=5))
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(Interrupted), hold_lock(state, ENV, "api", REGION, lock_owner(),
                                               cancel=cancel, poll=5):
        pass


def test_takes_over_an_expired_lease(state: LocalState) -> None:
    dead = state.acquire_lock(ENV, "counter", REGION, make_owner("dead"), timedelta(seconds=0.5))
    started = time.monotonic()
    with hold_lock(state, ENV, "counter", REGION, lock_owner(), poll=5,
                   timeout=timedelta(seconds=10)) as handle:
        # woke up at the lease's end, not after a full poll interval
        assert time.monotonic() - started < 4.5
        increment(state, handle.lock)
    with pytest.raises(LockLost):
        increment(state, dead)


def test_heartbeat_keeps_the_lease_alive(state: LocalState) -> None:
    ttl = timedelta(seconds=0.8)
    with hold_lock(state, ENV, "counter", REGION, lock_owner(), ttl=ttl) as handle:
        first_expiry = handle.lock.expires_at
        for _ in range(3):  # twice the lease
            time.sleep(0.55)
            with pytest.raises(LockHeld):
                state.acquire_lock(ENV, "counter", REGION, make_owner(), ttl)
        assert handle.lock.expires_at > first_expiry
        assert not handle.lost
        increment(state, handle.lock)
    assert counter(state) == 1


def test_heartbeat_notices_a_lost_lock(state: LocalState) -> None:
    with hold_lock(state, ENV, "api", REGION, lock_owner(), ttl=timedelta(seconds=0.3)) as handle:
        assert state.force_release(ENV, "api", REGION)
        thief = state.acquire_lock(ENV, "api", REGION, make_owner("thief"), timedelta(minutes=5))
        assert handle.lost_event.wait(2)
        assert handle.lost
        with pytest.raises(LockLost):
            state.put_record(make_record(ENV, "api", REGION), handle.lock)
    # leaving the block did not release the thief's lock
    assert [lk.owner for lk in state.locks(ENV)] == [thief.owner]


# ----------------------------------------------------------------------------- races


def test_16_threads_compete(spec: dict[str, Any]) -> None:
    """16 threads, 1-2 holds each: never two holders, every hold counted, no stray write."""
    backend = build_backend(spec)
    threads, holds = 16, spec["holds"]
    intervals: list[tuple[float, float]] = []
    outcomes: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(holds):
            try:
                with hold_lock(backend, ENV, "counter", REGION, lock_owner(), poll=spec["poll"],
                               ttl=timedelta(seconds=30), timeout=timedelta(seconds=60)) as h:
                    start = time.time()
                    increment(backend, h.lock, pause=0.002)
                    intervals.append((start, time.time()))
                    used = h.lock
                outcomes.append("held")
                with pytest.raises(LockLost):  # a non-holder's write never lands
                    increment(backend, used)
            except BaseException as exc:
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors, errors[:3]
    assert outcomes == ["held"] * threads * holds
    assert_disjoint(intervals)
    assert counter(backend) == threads * holds


def test_waiters_get_the_lock_or_time_out(spec: dict[str, Any]) -> None:
    """Holders that take long: each of 16 waiters gets the lock or gives up with LockHeld."""
    backend = build_backend(spec)
    results: list[str] = []
    intervals: list[tuple[float, float]] = []
    barrier = threading.Barrier(16)

    def work() -> None:
        barrier.wait()
        try:
            with hold_lock(backend, ENV, "counter", REGION, lock_owner(), poll=spec["poll"],
                           timeout=timedelta(seconds=0.6)) as h:
                start = time.time()
                increment(backend, h.lock)
                time.sleep(0.1)
                intervals.append((start, time.time()))
            results.append("held")
        except LockHeld as exc:
            assert exc.exit_code == EXIT_LOCKED
            results.append("timed out")
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            results.append(repr(exc))

    workers = [threading.Thread(target=work) for _ in range(16)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert sorted(set(results)) <= ["held", "timed out"], results
    assert len(results) == 16
    assert 1 <= results.count("held") < 16
    assert_disjoint(intervals)
    assert counter(backend) == results.count("held")


WORKER = textwrap.dedent('''
    import json, sys, time
    from datetime import timedelta
    sys.path[:0] = {paths!r}
    from test_locks import build_backend, increment
    from mila.errors import LockLost
    from mila.locks import hold_lock, lock_owner
    from mila.logs import configure_logging

    configure_logging(0)  # logs to stderr: stdout carries the results
    spec, mode, holds, ttl = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    backend = build_backend(spec)
    print(json.dumps({{"ready": True}}), flush=True)
    sys.stdin.readline()  # start together
    for _ in range(holds):
        with hold_lock(backend, "dev", "counter", "eu-west-1", lock_owner(), poll=spec["poll"],
                       ttl=timedelta(seconds=ttl), timeout=timedelta(seconds=60)) as h:
            if mode == "hang":
                print(json.dumps({{"locked": h.lock.owner.owner_id}}), flush=True)
                time.sleep(3600)
            start = time.time()
            increment(backend, h.lock, pause=0.002)
            interval = [start, time.time()]
            used = h.lock
        try:
            increment(backend, used)
            stray = True
        except LockLost:
            stray = False
        print(json.dumps({{"interval": interval, "stray_write": stray}}), flush=True)
''')


def start_workers(spec: dict[str, Any], tmp_path: Path, count: int, mode: str, holds: int,
                  ttl: float) -> list[subprocess.Popen[str]]:
    script = tmp_path / "lock_worker.py"
    script.write_text(WORKER.format(paths=[str(Path(__file__).parent), *sys.path]))
    procs = [subprocess.Popen([sys.executable, str(script), json.dumps(spec), mode, str(holds),
                               str(ttl)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=os.environ.copy())
             for _ in range(count)]
    for p in procs:
        assert p.stdout is not None and json.loads(p.stdout.readline()) == {"ready": True}
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


def test_4_processes_compete(spec: dict[str, Any], tmp_path: Path) -> None:
    holds = 2 * spec["holds"]
    procs = start_workers(spec, tmp_path, count=4, mode="race", holds=holds, ttl=30)
    lines: list[dict[str, Any]] = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        lines += [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == 4 * holds
    assert not any(line["stray_write"] for line in lines)
    assert_disjoint([tuple(line["interval"]) for line in lines])  # type: ignore[misc]
    assert counter(build_backend(spec)) == 4 * holds


def test_killed_holder_lease_is_taken_over_after_expiry(spec: dict[str, Any],
                                                        tmp_path: Path) -> None:
    backend = build_backend(spec)
    ttl = 2.0
    (proc,) = start_workers(spec, tmp_path, count=1, mode="hang", holds=1, ttl=ttl)
    assert proc.stdout is not None
    dead_owner = json.loads(proc.stdout.readline())["locked"]
    time.sleep(0.8)  # let it heartbeat once or twice
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (left,) = backend.locks(ENV)  # the lease outlives its holder
    assert left.owner.owner_id == dead_owner and left.owner.pid == proc.pid
    seen: list[Lock] = []
    still_leased = not left.expired()
    with hold_lock(backend, ENV, "counter", REGION, lock_owner(), on_wait=seen.append,
                   poll=0.1, timeout=timedelta(seconds=30)) as handle:
        taken = handle.lock
        increment(backend, handle.lock)
    # taken over only once the dead run's lease ran out, and promptly (not at the timeout)
    assert taken.acquired_at >= left.expires_at
    assert (taken.acquired_at - left.expires_at).total_seconds() < 5
    if still_leased:  # (on a loaded machine the lease may be over before we even look)
        assert [h.owner.owner_id for h in seen] == [dead_owner]
    with pytest.raises(LockLost):  # the dead run's lease can no longer write
        increment(backend, left)
    assert counter(backend) == 1
    assert backend.locks(ENV) == []


def test_lock_held_message_for_the_cli(state: LocalState) -> None:
    lock = state.acquire_lock(ENV, "api", REGION, make_owner("bob"), timedelta(minutes=5))
    with pytest.raises(LockHeld) as info:
        state.acquire_lock(ENV, "api", REGION, make_owner(), timedelta(minutes=5))
    assert info.value.holder == lock


class _RetriedAcquire:
    """A backend whose first acquire takes the lock, then 'times out' at the client, as when
    the SDK resends a request that had already succeeded (moto ignores idempotency tokens)."""

    def __init__(self, state: LocalState) -> None:
        self.state = state
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)

    def acquire_lock(self, *args: Any, **kwargs: Any) -> Lock:
        self.calls += 1
        lock = self.state.acquire_lock(*args, **kwargs)
        if self.calls == 1:
            raise TimeoutError("read timeout after the server applied the write")
        return lock


def test_a_retried_acquire_refused_by_our_own_lease_holds_the_lock(state: LocalState) -> None:
    from mila.locks import acquire_waiting

    flaky = _RetriedAcquire(state)
    owner = lock_owner()
    with pytest.raises(TimeoutError):
        flaky.acquire_lock("dev", "api", "eu-west-1", owner, timedelta(minutes=5))
    lock = acquire_waiting(flaky, "dev", "api", "eu-west-1", owner, ttl=timedelta(minutes=5),
                           timeout=timedelta(seconds=1), poll=0.01)
    assert lock.owner.owner_id == owner.owner_id
    # another run still waits and times out: the lease is really held
    with pytest.raises(LockHeld):
        acquire_waiting(state, "dev", "api", "eu-west-1", lock_owner(),
                        ttl=timedelta(minutes=5), timeout=timedelta(seconds=0.2), poll=0.01)
