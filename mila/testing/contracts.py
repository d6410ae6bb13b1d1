"""Contract test suites: every guarantee a protocol documents, written once as pytest tests.

A state backend (built-in or third-party) proves it keeps the :class:`StateBackend` contract by
subclassing :class:`StateBackendContract` in a module pytest collects, and overriding one
fixture, ``fresh_backend``: a backend whose storage does *not* exist yet (never initialised)::

    from mila.testing.contracts import StateBackendContract

    class TestMyBackend(StateBackendContract):
        @pytest.fixture
        def fresh_backend(self, tmp_path):
            return MyBackend(tmp_path / "state")

The suite calls ``init()`` itself (``backend`` is ``fresh_backend`` after ``init``). Its
concurrency tests use threads: for a backend behind a network service, point it at a server
that really is atomic (for AWS: mila's serialised sandbox, never plain moto — see
``notes/moto-facts.md``). Class attributes tune it: ``region`` (a region name the backend
accepts), ``race_threads``, ``race_rounds``, ``retry_delay``, ``many_services``,
``counter_workers``, ``counter_increments``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from mila.errors import (
    EnvironmentExists,
    EnvironmentNotFound,
    LockHeld,
    LockLost,
    RecordChanged,
    StateError,
    StateNotInitialized,
)
from mila.model import (
    ActionKind,
    HistoryEntry,
    Lock,
    LockOwner,
    Record,
    Status,
    frozen_mapping,
    utcnow,
)
from mila.protocols import StateBackend, read_record, record_with_history

__all__ = ["StateBackendContract", "make_owner", "make_record"]


def make_owner(name: str = "tester") -> LockOwner:
    """A lock owner with a fresh ``owner_id`` (each call is a different run)."""
    return LockOwner(owner_id=uuid.uuid4().hex, user=name, host="contract-host", pid=4242,
                     ci_job="job-7")


#: a deployer's opaque ``Record.data``: every JSON type, nested, unicode, empty values
DEPLOYER_DATA: dict[str, Any] = {
    "destroy": "rm -rf 'cloud/x y'", "count": 3, "negative": -17, "ok": True, "off": False,
    "none": None, "empty": "", "ünï": "✓",
    "nested": {"ids": ["a", "b"], "empty_list": [], "empty_map": {}, "deep": {"n": 1}},
}


def make_record(environment: str, service: str, region: str, **overrides: Any) -> Record:
    """A fully populated record (every field set, so a round trip proves every field)."""
    fields: dict[str, Any] = {
        "environment": environment, "service": service, "region": region,
        "checksum": "c0ffee" * 10 + "abcd", "status": Status.SUCCEEDED, "deployer": "sam",
        "stack_name": f"shop-{environment}-{service}",
        "outputs": {"ApiUrl": "https://example.com/x?y=1", "Empty": "", "Ünïcode": "✓"},
        "commit": "0123456789abcdef0123456789abcdef01234567", "deployed_by": "alice@laptop",
        "deployed_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
        "duration_seconds": 12.25, "manifest_key": f"checksums/{environment}/{service}/{region}.json",
        "message": None, "depends_on": ("shared", "db"),
        "started_by": "alice@laptop",
        "started_at": datetime(2026, 1, 2, 3, 3, 0, 1, tzinfo=timezone.utc),
        "data": DEPLOYER_DATA,
    }
    fields.update(overrides)
    return Record(**fields)


class StateBackendContract:
    """The :class:`mila.protocols.StateBackend` contract. Override ``fresh_backend``."""

    region = "eu-west-1"
    other_region = "us-east-1"
    race_threads = 16
    race_rounds = 5
    #: pause between attempts of a worker that found the lock held (raise it for a backend
    #: behind a slow or serialised server, so waiters do not starve the holder)
    retry_delay = 0.005
    many_services = 40
    counter_workers = 8
    counter_increments = 5
    ttl = timedelta(minutes=5)

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def fresh_backend(self) -> StateBackend:
        raise NotImplementedError("override the `fresh_backend` fixture: a backend whose "
                                  "storage was never initialised")

    @pytest.fixture
    def backend(self, fresh_backend: StateBackend) -> StateBackend:
        fresh_backend.init()
        return fresh_backend

    @pytest.fixture
    def env(self, backend: StateBackend) -> str:
        backend.create_environment("dev", [self.region], created_by="contract")
        return "dev"

    def lock(self, backend: StateBackend, env: str, service: str = "api",
             owner: LockOwner | None = None, ttl: timedelta | None = None) -> Lock:
        return backend.acquire_lock(env, service, self.region, owner or make_owner(),
                                    ttl or self.ttl)

    # ------------------------------------------------------------------ init

    def test_is_a_state_backend(self, fresh_backend: StateBackend) -> None:
        assert isinstance(fresh_backend, StateBackend)
        assert isinstance(fresh_backend.name, str) and fresh_backend.name
        assert isinstance(fresh_backend.location(), str) and fresh_backend.location()

    def test_uninitialised_state_says_so(self, fresh_backend: StateBackend) -> None:
        for call in (lambda: fresh_backend.list_environments(),
                     lambda: fresh_backend.get_environment("dev"),
                     lambda: fresh_backend.records("dev"),
                     lambda: fresh_backend.create_environment("dev", [self.region], "x")):
            with pytest.raises(StateNotInitialized) as info:
                call()
            assert "mila init" in str(info.value)

    def test_init_is_idempotent(self, fresh_backend: StateBackend) -> None:
        assert fresh_backend.init(), "the first init must say what it created"
        assert fresh_backend.init() == []
        fresh_backend.create_environment("dev", [self.region], created_by="x")
        assert fresh_backend.init() == []
        assert [e.name for e in fresh_backend.list_environments()] == ["dev"]

    # ------------------------------------------------------------------ environments

    def test_environments_round_trip(self, backend: StateBackend) -> None:
        assert backend.list_environments() == []
        created = backend.create_environment("prod", [self.region, self.other_region], "alice")
        assert created.name == "prod"
        assert created.regions == (self.region, self.other_region)
        assert created.created_by == "alice"
        assert created.created_at is not None and created.created_at.tzinfo is not None
        assert backend.get_environment("prod") == created
        backend.create_environment("dev", [self.region], "bob")
        assert [e.name for e in backend.list_environments()] == ["dev", "prod"]

    def test_create_existing_environment_refused(self, backend: StateBackend, env: str) -> None:
        with pytest.raises(EnvironmentExists):
            backend.create_environment(env, [self.other_region], "someone")
        assert backend.get_environment(env).regions == (self.region,)

    def test_set_regions(self, backend: StateBackend, env: str) -> None:
        before = backend.get_environment(env)
        after = backend.set_regions(env, [self.region, self.other_region])
        assert after.regions == (self.region, self.other_region)
        assert after.created_at == before.created_at and after.created_by == before.created_by
        assert backend.get_environment(env) == after
        assert backend.list_environments() == [after]

    def test_unknown_environment(self, backend: StateBackend) -> None:
        lock = Lock("nope", "api", self.region, make_owner(), utcnow(), utcnow() + self.ttl)
        calls: list[Callable[[], object]] = [
            lambda: backend.get_environment("nope"),
            lambda: backend.records("nope"),
            lambda: backend.set_regions("nope", [self.region]),
            lambda: backend.delete_environment("nope"),
            lambda: backend.history("nope"),
            lambda: backend.locks("nope"),
            lambda: backend.acquire_lock("nope", "api", self.region, make_owner(), self.ttl),
            lambda: backend.force_release("nope", "api", self.region),
            lambda: backend.put_record(make_record("nope", "api", self.region), lock),
            lambda: backend.append_history(HistoryEntry(
                "nope", "api", self.region, ActionKind.DEPLOY, Status.SUCCEEDED, "c", utcnow())),
            lambda: backend.put_manifest("nope", "api", self.region, {}),
        ]
        for call in calls:
            with pytest.raises(EnvironmentNotFound) as info:
                call()
            assert "mila envs create nope" in str(info.value)

    def test_delete_environment(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env)  # a leftover lease does not keep an environment alive
        assert backend.locks(env) == [lock]
        backend.delete_environment(env)
        with pytest.raises(EnvironmentNotFound):
            backend.get_environment(env)
        assert backend.list_environments() == []
        again = backend.create_environment(env, [self.other_region], "x")
        assert backend.get_environment(env) == again
        assert backend.records(env) == [] and backend.locks(env) == []

    def test_delete_environment_refused_while_records_exist(self, backend: StateBackend,
                                                            env: str) -> None:
        lock = self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region), lock)
        with pytest.raises(StateError) as info:
            backend.delete_environment(env)
        assert "api" in str(info.value)
        assert backend.get_environment(env).name == env
        assert len(backend.records(env)) == 1
        backend.delete_record(env, "api", self.region, lock)
        backend.release(lock)
        backend.delete_environment(env)
        assert backend.list_environments() == []

    # ------------------------------------------------------------------ records

    def test_records_round_trip(self, backend: StateBackend, env: str) -> None:
        assert backend.records(env) == []
        written = []
        for service in ("web", "api", "shared"):
            lock = self.lock(backend, env, service)
            record = make_record(env, service, self.region)
            backend.put_record(record, lock)
            backend.release(lock)
            written.append(record)
        minimal = Record(env, "worker", self.region, None, Status.IN_PROGRESS, "cloudformation")
        lock = self.lock(backend, env, "worker")
        backend.put_record(minimal, lock)
        written.append(minimal)
        got = backend.records(env)
        key = lambda r: (r.service, r.region)  # noqa: E731
        assert sorted(got, key=key) == sorted(written, key=key)
        by_service = {r.service: r for r in got}
        assert by_service["api"].deployed_at == datetime(2026, 1, 2, 3, 4, 5, 678901,
                                                         tzinfo=timezone.utc)
        assert dict(by_service["api"].outputs)["Ünïcode"] == "✓"
        assert by_service["api"].status is Status.SUCCEEDED
        assert by_service["worker"].checksum is None

    def test_deployer_data_round_trips(self, backend: StateBackend, env: str) -> None:
        """``Record.data`` (a deployer's own, opaque JSON) reads back exactly as written, from
        ``records`` and one read; a record written without data reads back ``{}``."""
        lock = self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region), lock)
        backend.put_record(Record(env, "web", self.region, None, Status.FAILED, "shell"),
                           self.lock(backend, env, "web"))
        got = read_record(backend, env, "api", self.region)
        assert got is not None and json.loads(json.dumps(dict(got.data))) == DEPLOYER_DATA
        assert {r.service: dict(r.data) for r in backend.records(env)} == {
            "api": DEPLOYER_DATA, "web": {}}

    def test_put_record_replaces(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region, status=Status.IN_PROGRESS), lock)
        final = make_record(env, "api", self.region, checksum="new", outputs={"A": "1"})
        backend.put_record(final, lock)
        assert backend.records(env) == [final]

    def test_records_of_many_services(self, backend: StateBackend, env: str) -> None:
        # enough to span pages in stores that paginate
        owner = make_owner()
        names = [f"svc-{i:03d}" for i in range(self.many_services)]
        for name in names:
            lock = self.lock(backend, env, name, owner=owner)
            backend.put_record(make_record(env, name, self.region,
                                           outputs={f"O{j}": "x" * 200 for j in range(20)}), lock)
        assert sorted(r.service for r in backend.records(env)) == names

    def test_records_are_per_environment(self, backend: StateBackend, env: str) -> None:
        backend.create_environment("dev-2", [self.region], "x")
        lock = self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region), lock)
        assert backend.records("dev-2") == []
        assert backend.locks("dev-2") == []

    def test_delete_record(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region), lock)
        backend.delete_record(env, "api", self.region, lock)
        assert backend.records(env) == []

    # ------------------------------------------------------------------ versioned writes

    def test_get_record(self, backend: StateBackend, env: str) -> None:
        """``read_record`` (the optional ``get_record``, or its fallback) reads one record."""
        lock = self.lock(backend, env)
        record = make_record(env, "api", self.region, version=1)
        backend.put_record(record, lock)
        assert read_record(backend, env, "api", self.region) == record
        assert read_record(backend, env, "web", self.region) is None
        assert read_record(backend, env, "api", self.other_region) is None
        with pytest.raises(EnvironmentNotFound):
            read_record(backend, "nope", "api", self.region)

    def test_record_with_history_writes_both_or_neither(self, backend: StateBackend,
                                                        env: str) -> None:
        """``record_with_history`` (the optional ``put_record_with_history``, or its fallback):
        the record and the row land together; a refused record write (version, lock) writes
        no row either."""
        lock = self.lock(backend, env)
        first = make_record(env, "api", self.region, version=1)
        row = HistoryEntry(env, "api", self.region, ActionKind.FIRST_DEPLOY, Status.SUCCEEDED,
                           first.checksum, utcnow(), by="alice", duration_seconds=2.5)
        record_with_history(backend, first, row, lock)
        assert read_record(backend, env, "api", self.region) == first
        assert backend.history(env) == [row]
        with pytest.raises(RecordChanged):  # version 3 does not follow 1
            record_with_history(backend, replace(first, version=3),
                                replace(row, at=utcnow() + timedelta(seconds=1)), lock)
        backend.release(lock)
        with pytest.raises(LockLost):  # the lock is no longer held
            record_with_history(backend, replace(first, version=2),
                                replace(row, at=utcnow() + timedelta(seconds=2)), lock)
        assert read_record(backend, env, "api", self.region) == first
        assert backend.history(env) == [row]

    def test_versioned_write_follows_the_version_read(self, backend: StateBackend,
                                                      env: str) -> None:
        lock = self.lock(backend, env)
        with pytest.raises(RecordChanged):  # version 2 follows 1, and there is no record
            backend.put_record(make_record(env, "api", self.region, version=2), lock)
        assert backend.records(env) == []
        first = make_record(env, "api", self.region, checksum="one", version=1)
        backend.put_record(first, lock)
        for stale in (1, 3):  # written from a copy read before `first`, or skipping one
            with pytest.raises(RecordChanged):
                backend.put_record(make_record(env, "api", self.region, checksum="stale",
                                               version=stale), lock)
        assert backend.records(env) == [first]
        second = replace(first, checksum="two", version=2)
        backend.put_record(second, lock)
        assert backend.records(env) == [second]

    def test_unversioned_record_is_followed_by_version_one(self, backend: StateBackend,
                                                           env: str) -> None:
        """Records written before versions existed (version 0) are followed by version 1."""
        lock = self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region), lock)
        backend.put_record(make_record(env, "api", self.region), lock)  # 0: unconditional
        newer = make_record(env, "api", self.region, checksum="v1", version=1)
        backend.put_record(newer, lock)
        assert backend.records(env) == [newer]

    def test_versioned_write_race_has_one_winner(self, backend: StateBackend, env: str) -> None:
        """Writers that all read version 1 each write version 2: exactly one lands."""
        lock = self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region, checksum="base", version=1), lock)
        threads = min(self.race_threads, 8)
        results = self.race(threads, lambda: backend.put_record(make_record(
            env, "api", self.region, checksum=uuid.uuid4().hex, version=2), lock))
        assert Counter(type(r).__name__ for r in results) == \
            {"NoneType": 1, "RecordChanged": threads - 1}, results
        (final,) = backend.records(env)
        assert final.version == 2 and final.checksum != "base"

    # ------------------------------------------------------------------ conditional writes

    def test_write_without_the_lock_is_refused(self, backend: StateBackend, env: str) -> None:
        never_taken = Lock(env, "api", self.region, make_owner(), utcnow(), utcnow() + self.ttl)
        with pytest.raises(LockLost):
            backend.put_record(make_record(env, "api", self.region), never_taken)
        assert backend.records(env) == []

    def test_write_by_a_non_holder_is_refused(self, backend: StateBackend, env: str) -> None:
        holder = self.lock(backend, env)
        good = make_record(env, "api", self.region, checksum="holder")
        backend.put_record(good, holder)
        impostor = Lock(env, "api", self.region, make_owner("impostor"), holder.acquired_at,
                        holder.expires_at)
        for call in (lambda: backend.put_record(make_record(env, "api", self.region,
                                                            checksum="bad"), impostor),
                     lambda: backend.delete_record(env, "api", self.region, impostor),
                     lambda: backend.heartbeat(impostor, self.ttl),
                     lambda: backend.release(impostor)):
            with pytest.raises(LockLost):
                call()
        assert backend.records(env) == [good]
        assert [lk.owner.owner_id for lk in backend.locks(env)] == [holder.owner.owner_id]

    def test_lock_for_another_key_does_not_authorise(self, backend: StateBackend, env: str) -> None:
        other = self.lock(backend, env, "web")
        with pytest.raises(LockLost):
            backend.put_record(make_record(env, "api", self.region), other)
        assert backend.records(env) == []

    def test_expired_lease_cannot_write(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env, ttl=timedelta(seconds=0.3))
        time.sleep(0.5)
        with pytest.raises(LockLost):
            backend.put_record(make_record(env, "api", self.region), lock)
        with pytest.raises(LockLost):
            backend.heartbeat(lock, self.ttl)
        assert backend.records(env) == []

    def test_released_lock_cannot_write(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env)
        backend.release(lock)
        with pytest.raises(LockLost):
            backend.put_record(make_record(env, "api", self.region), lock)
        with pytest.raises(LockLost):
            backend.release(lock)

    def test_force_released_lock_cannot_write(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env)
        assert backend.force_release(env, "api", self.region) is True
        assert backend.force_release(env, "api", self.region) is False
        with pytest.raises(LockLost):
            backend.put_record(make_record(env, "api", self.region), lock)
        assert backend.locks(env) == []

    # ------------------------------------------------------------------ locks

    def test_lock_is_exclusive(self, backend: StateBackend, env: str) -> None:
        first = self.lock(backend, env, owner=make_owner("first"))
        with pytest.raises(LockHeld) as info:
            self.lock(backend, env, owner=make_owner("second"))
        holder = info.value.holder
        assert isinstance(holder, Lock)
        assert holder.owner == first.owner
        assert info.value.exit_code == 3
        # other keys are independent
        self.lock(backend, env, "web")
        backend.acquire_lock(env, "api", self.other_region, make_owner(), self.ttl)

    def test_same_owner_cannot_take_it_twice(self, backend: StateBackend, env: str) -> None:
        owner = make_owner()
        self.lock(backend, env, owner=owner)
        with pytest.raises(LockHeld):
            self.lock(backend, env, owner=owner)

    def test_lock_fields_round_trip(self, backend: StateBackend, env: str) -> None:
        owner = make_owner("carol")
        lock = self.lock(backend, env, owner=owner)
        assert lock.owner == owner
        assert lock.expires_at - lock.acquired_at == self.ttl
        assert backend.locks(env) == [lock]

    def test_release_frees_the_lock(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env)
        backend.release(lock)
        assert backend.locks(env) == []
        self.lock(backend, env)

    def test_heartbeat_extends_the_lease(self, backend: StateBackend, env: str) -> None:
        lock = self.lock(backend, env, ttl=timedelta(seconds=1.5))
        renewed = backend.heartbeat(lock, timedelta(minutes=10))
        assert renewed.owner == lock.owner
        assert renewed.acquired_at == lock.acquired_at
        assert renewed.expires_at > lock.expires_at
        assert backend.locks(env) == [renewed]
        time.sleep(1.6)
        with pytest.raises(LockHeld):  # the renewed lease still holds
            self.lock(backend, env)
        backend.put_record(make_record(env, "api", self.region), renewed)

    def test_expired_lease_is_taken_over(self, backend: StateBackend, env: str) -> None:
        old = self.lock(backend, env, owner=make_owner("crashed"), ttl=timedelta(seconds=0.3))
        time.sleep(0.5)
        new = self.lock(backend, env, owner=make_owner("next"))
        assert new.owner.user == "next"
        assert backend.locks(env) == [new]
        for call in (lambda: backend.heartbeat(old, self.ttl), lambda: backend.release(old),
                     lambda: backend.put_record(make_record(env, "api", self.region), old)):
            with pytest.raises(LockLost):
                call()
        backend.put_record(make_record(env, "api", self.region), new)
        backend.release(new)

    # ------------------------------------------------------------------ history

    def test_history_round_trip_newest_first(self, backend: StateBackend, env: str) -> None:
        assert backend.history(env) == []
        base = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
        entries = []
        for i, service in enumerate(["api", "web", "api", "worker", "api"]):
            entry = HistoryEntry(env, service, self.region,
                                 ActionKind.DEPLOY if i else ActionKind.FIRST_DEPLOY,
                                 Status.FAILED if i == 3 else Status.SUCCEEDED, f"sum{i}",
                                 base + timedelta(minutes=i), by="alice", commit="abc",
                                 duration_seconds=1.5 * i, message="boom" if i == 3 else None)
            backend.append_history(entry)
            entries.append(entry)
        assert backend.history(env) == entries[::-1]
        assert backend.history(env, limit=2) == entries[::-1][:2]
        assert backend.history(env, service="api") == [entries[4], entries[2], entries[0]]
        assert backend.history(env, service="api", limit=1) == [entries[4]]
        assert backend.history(env, service="nothing") == []

    def test_history_keeps_simultaneous_entries(self, backend: StateBackend, env: str) -> None:
        at = utcnow()
        for status in (Status.FAILED, Status.SUCCEEDED):
            backend.append_history(HistoryEntry(env, "api", self.region, ActionKind.DEPLOY,
                                                status, "c", at))
        assert len(backend.history(env)) == 2

    def test_history_is_per_environment_and_kept(self, backend: StateBackend, env: str) -> None:
        backend.create_environment("other", [self.region], "x")
        backend.append_history(HistoryEntry(env, "api", self.region, ActionKind.DESTROY,
                                            Status.SUCCEEDED, None, utcnow()))
        assert backend.history("other") == []
        assert backend.history(env)[0].checksum is None

    # ------------------------------------------------------------------ manifests

    def test_manifest_round_trip(self, backend: StateBackend, env: str) -> None:
        assert backend.get_manifest(env, "api", self.region) is None
        manifest = {"checksum": "abc", "files": {"src/ä.py": "1" * 40, "b": "2" * 40},
                    "dependencies": {"shared": "x"}, "inputs": {"sam:version": "y"}, "n": 3}
        key = backend.put_manifest(env, "api", self.region, manifest)
        assert isinstance(key, str) and key
        assert backend.get_manifest(env, "api", self.region) == manifest
        assert backend.get_manifest(env, "api", self.other_region) is None
        # read-only mappings (as frozen model values hold them) are stored as plain JSON
        backend.put_manifest(env, "api", self.region, frozen_mapping(
            {"checksum": "new", "files": frozen_mapping({"a": "1"}), "order": ("x", "y")}))
        assert backend.get_manifest(env, "api", self.region) == \
            {"checksum": "new", "files": {"a": "1"}, "order": ["x", "y"]}

    # ------------------------------------------------------------------ concurrency

    @staticmethod
    def race(threads: int, call: Any) -> list[Any]:
        """Run ``call()`` in ``threads`` threads released at once; their results or exceptions."""
        barrier = threading.Barrier(threads)
        results: list[Any] = []

        def run() -> None:
            barrier.wait()
            try:
                results.append(call())
            except BaseException as exc:
                results.append(exc)

        workers = [threading.Thread(target=run) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        return results

    def test_lock_race_has_one_winner(self, backend: StateBackend, env: str) -> None:
        """``race_threads`` threads try the same free lock at once: exactly one gets it."""
        for round_ in range(self.race_rounds):
            service = f"race-{round_}"
            results = self.race(self.race_threads, lambda service=service: backend.acquire_lock(
                env, service, self.region, make_owner(), self.ttl))
            kinds = Counter(type(r).__name__ for r in results)
            assert kinds == {"Lock": 1, "LockHeld": self.race_threads - 1}, results

    def test_expired_lease_race_has_one_winner(self, backend: StateBackend, env: str) -> None:
        """Many runs find the same expired lease at once: exactly one takes it over."""
        for round_ in range(max(self.race_rounds // 2, 1)):
            service = f"takeover-{round_}"
            backend.acquire_lock(env, service, self.region, make_owner("dead"),
                                 timedelta(seconds=0.2))
            time.sleep(0.3)
            results = self.race(self.race_threads, lambda service=service: backend.acquire_lock(
                env, service, self.region, make_owner(), self.ttl))
            winners = [r for r in results if isinstance(r, Lock)]
            assert len(winners) == 1, results
            assert all(isinstance(r, (Lock, LockHeld)) for r in results), results
            assert [lk.owner for lk in backend.locks(env) if lk.service == service] == \
                [winners[0].owner]

    def test_locked_read_modify_write_loses_no_update(self, backend: StateBackend,
                                                      env: str) -> None:
        """Threads increment a counter kept in a record, each under the lock: no update is
        lost and no write by a non-holder lands."""
        workers, increments = self.counter_workers, self.counter_increments
        lock0 = self.lock(backend, env, "counter")
        backend.put_record(make_record(env, "counter", self.region, checksum="0"), lock0)
        backend.release(lock0)
        errors: list[BaseException] = []

        def work() -> None:
            done = 0
            try:
                while done < increments:
                    try:
                        lock = self.lock(backend, env, "counter")
                    except LockHeld:
                        time.sleep(self.retry_delay)
                        continue
                    try:
                        (current,) = [r for r in backend.records(env) if r.service == "counter"]
                        backend.put_record(make_record(env, "counter", self.region,
                                                       checksum=str(int(current.checksum or 0) + 1)),
                                           lock)
                        done += 1
                    finally:
                        backend.release(lock)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        (final,) = backend.records(env)
        assert final.checksum == str(workers * increments)
