"""The ``local`` state backend: the whole state in one SQLite file, ``<root>/.mila/state.db``.

For one machine, and for trying mila without AWS. Safe across threads and processes: every
thread of every process opens its own connection; the database runs in WAL mode (readers never
block the writer) and every write is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's
write lock *before* reading, so a check and the write it guards (a lock's owner and expiry, an
environment's existence) can never interleave with another writer.

Rows keep each value as the JSON document of :mod:`mila.state_json`, plus the columns queries
and conditions need (lock expiry as epoch seconds).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from mila.errors import (
    EnvironmentExists,
    EnvironmentNotFound,
    LockHeld,
    LockLost,
    RecordChanged,
    StateError,
    StateNotInitialized,
)
from mila.model import Environment, HistoryEntry, Lock, LockOwner, Record, utcnow
from mila.private import private_dirs, touch_private
from mila.state_json import (
    dt_to_str,
    environment_from_dict,
    environment_to_dict,
    history_from_dict,
    history_to_dict,
    lock_from_dict,
    lock_to_dict,
    plain,
    record_from_dict,
    record_to_dict,
)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS environments (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    environment TEXT NOT NULL, service TEXT NOT NULL, region TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (environment, service, region));
CREATE TABLE IF NOT EXISTS locks (
    environment TEXT NOT NULL, service TEXT NOT NULL, region TEXT NOT NULL,
    owner_id TEXT NOT NULL, expires REAL NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (environment, service, region));
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, environment TEXT NOT NULL, service TEXT NOT NULL,
    at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_by_env ON history (environment, at);
CREATE TABLE IF NOT EXISTS manifests (
    environment TEXT NOT NULL, service TEXT NOT NULL, region TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (environment, service, region));
"""
BUSY_TIMEOUT_MS = 60_000


class LocalState:
    """:class:`mila.protocols.StateBackend` over SQLite (see the module docstring)."""

    name = "local"
    #: reading is a local SQLite query: shell completion may list environments from it
    cheap_reads = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def location(self) -> str:
        return f"sqlite:{self.path}"

    # ------------------------------------------------------------------ connections

    def _open(self, mode: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode={mode}", uri=True,
                                   isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot open the local state {self.path}: {exc}") from None
        return conn

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread and per process: a forked child must not share its
        # parent's connection.
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        if not self.path.is_file():
            raise StateNotInitialized(self.location())
        conn = self._open("rw")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for the reads of one method."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield conn
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its first statement."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            conn.execute("ROLLBACK")
            raise self._error(exc) from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _error(self, exc: sqlite3.DatabaseError) -> StateError:
        if "no such table" in str(exc):
            return StateNotInitialized(self.location())
        return StateError(f"local state {self.path}: {exc}")

    # ------------------------------------------------------------------ init

    def init(self) -> list[str]:
        created = []
        if not self.path.is_file():
            # .mila/ 0700, the database 0600 (SQLite gives its -wal/-shm files the same mode)
            private_dirs(self.path.parent, self.path.parent)
            touch_private(self.path)
            created.append(f"SQLite database {self.path}")
        conn = self._open("rwc")
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once for every opener
            conn.execute("BEGIN IMMEDIATE")
            existing = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot create the local state in {self.path}: {exc}",
                             hint="move that file away if it is not mila's") from None
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        if not created and "environments" not in existing:
            created.append(f"tables in {self.path}")
        return created

    # ------------------------------------------------------------------ environments

    @staticmethod
    def _env_row(conn: sqlite3.Connection, name: str) -> Environment:
        row = conn.execute("SELECT doc FROM environments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise EnvironmentNotFound(name)
        return environment_from_dict(json.loads(row[0]))

    def create_environment(self, name: str, regions: Iterable[str], created_by: str) -> Environment:
        env = Environment(name=name, regions=tuple(regions), created_at=utcnow(),
                          created_by=created_by)
        with self._write() as conn:
            try:
                conn.execute("INSERT INTO environments VALUES (?, ?)",
                             (name, json.dumps(environment_to_dict(env))))
            except sqlite3.IntegrityError:
                raise EnvironmentExists(name) from None
        return env

    def get_environment(self, name: str) -> Environment:
        with self._read() as conn:
            return self._env_row(conn, name)

    def list_environments(self) -> list[Environment]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM environments ORDER BY name").fetchall()
        return [environment_from_dict(json.loads(r[0])) for r in rows]

    def set_regions(self, name: str, regions: Iterable[str]) -> Environment:
        with self._write() as conn:
            env = self._env_row(conn, name)
            env = Environment(env.name, tuple(regions), env.created_at, env.created_by)
            conn.execute("UPDATE environments SET doc = ? WHERE name = ?",
                         (json.dumps(environment_to_dict(env)), name))
        return env

    def delete_environment(self, name: str) -> None:
        with self._write() as conn:
            self._env_row(conn, name)
            rows = conn.execute("SELECT service, region FROM records WHERE environment = ? "
                                "ORDER BY service, region", (name,)).fetchall()
            if rows:
                shown = ", ".join(f"{s} ({r})" for s, r in rows[:5])
                more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
                raise StateError(f"environment '{name}' still has {len(rows)} deployed "
                                 f"service(s): {shown}{more}",
                                 hint="destroy them first (`mila remove -e " + name + "`)")
            conn.execute("DELETE FROM locks WHERE environment = ?", (name,))
            conn.execute("DELETE FROM manifests WHERE environment = ?", (name,))
            conn.execute("DELETE FROM environments WHERE name = ?", (name,))

    # ------------------------------------------------------------------ records

    def records(self, environment: str) -> list[Record]:
        with self._read() as conn:
            self._env_row(conn, environment)
            rows = conn.execute("SELECT doc FROM records WHERE environment = ? "
                                "ORDER BY service, region", (environment,)).fetchall()
        return [record_from_dict(json.loads(r[0])) for r in rows]

    @staticmethod
    def _check_holder(conn: sqlite3.Connection, environment: str, service: str, region: str,
                      lock: Lock) -> None:
        if (lock.environment, lock.service, lock.region) != (environment, service, region):
            raise LockLost(f"the lock given is for {lock.service} in {lock.environment}/"
                           f"{lock.region}, not {service} in {environment}/{region}")
        row = conn.execute("SELECT owner_id, expires FROM locks WHERE environment = ? AND "
                           "service = ? AND region = ?", (environment, service, region)).fetchone()
        if row is None or row[0] != lock.owner.owner_id or row[1] <= utcnow().timestamp():
            raise LockLost(f"this run no longer holds the lock on {service} in "
                           f"{environment}/{region}; nothing was written",
                           hint="its lease expired or it was force-released; run again")

    def get_record(self, environment: str, service: str, region: str) -> Record | None:
        with self._read() as conn:
            self._env_row(conn, environment)
            row = conn.execute("SELECT doc FROM records WHERE environment = ? AND service = ? "
                               "AND region = ?", (environment, service, region)).fetchone()
        return None if row is None else record_from_dict(json.loads(row[0]))

    def put_record(self, record: Record, lock: Lock) -> None:
        with self._write() as conn:
            self._put_record(conn, record, lock)

    def put_record_with_history(self, record: Record, entry: HistoryEntry, lock: Lock) -> None:
        with self._write() as conn:  # one transaction: both or neither
            self._put_record(conn, record, lock)
            self._append_history(conn, entry)

    def _put_record(self, conn: sqlite3.Connection, record: Record, lock: Lock) -> None:
        self._env_row(conn, record.environment)
        self._check_holder(conn, record.environment, record.service, record.region, lock)
        if record.version > 0:
            row = conn.execute("SELECT doc FROM records WHERE environment = ? AND "
                               "service = ? AND region = ?",
                               (record.environment, record.service, record.region)).fetchone()
            stored = record_from_dict(json.loads(row[0])) if row else None
            if (stored.version if stored else 0) != record.version - 1:
                raise RecordChanged(record.environment, record.service, record.region,
                                    stored.version if stored else None,
                                    record.version - 1, current=stored)
        conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                     (record.environment, record.service, record.region,
                      json.dumps(record_to_dict(record))))

    def delete_record(self, environment: str, service: str, region: str, lock: Lock) -> None:
        with self._write() as conn:
            self._env_row(conn, environment)
            self._check_holder(conn, environment, service, region, lock)
            conn.execute("DELETE FROM records WHERE environment = ? AND service = ? AND "
                         "region = ?", (environment, service, region))

    # ------------------------------------------------------------------ history

    def append_history(self, entry: HistoryEntry) -> None:
        with self._write() as conn:
            self._append_history(conn, entry)

    def _append_history(self, conn: sqlite3.Connection, entry: HistoryEntry) -> None:
        self._env_row(conn, entry.environment)
        conn.execute("INSERT INTO history (environment, service, at, doc) VALUES (?, ?, ?, ?)",
                     (entry.environment, entry.service, dt_to_str(entry.at),
                      json.dumps(history_to_dict(entry))))

    def history(self, environment: str, service: str | None = None,
                limit: int | None = None) -> list[HistoryEntry]:
        sql = "SELECT doc FROM history WHERE environment = ?"
        args: list[Any] = [environment]
        if service is not None:
            sql += " AND service = ?"
            args.append(service)
        sql += " ORDER BY at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._read() as conn:
            self._env_row(conn, environment)
            rows = conn.execute(sql, args).fetchall()
        return [history_from_dict(json.loads(r[0])) for r in rows]

    # ------------------------------------------------------------------ locks

    def acquire_lock(self, environment: str, service: str, region: str, owner: LockOwner,
                     ttl: timedelta) -> Lock:
        now = utcnow()
        lock = Lock(environment, service, region, owner, acquired_at=now, expires_at=now + ttl)
        with self._write() as conn:
            self._env_row(conn, environment)
            row = conn.execute("SELECT doc, expires FROM locks WHERE environment = ? AND "
                               "service = ? AND region = ?",
                               (environment, service, region)).fetchone()
            # The write lock is held since BEGIN IMMEDIATE: this check and the write below are
            # one atomic step, and taking over an expired lease is conditional on that lease.
            if row is not None and row[1] > now.timestamp():
                holder = lock_from_dict(json.loads(row[0]))
                raise LockHeld(holder, f"the lock on {service} in {environment}/{region} is "
                                       f"held by {holder.owner.user}@{holder.owner.host}")
            conn.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?)",
                         (environment, service, region, owner.owner_id,
                          lock.expires_at.timestamp(), json.dumps(lock_to_dict(lock))))
        return lock

    def heartbeat(self, lock: Lock, ttl: timedelta) -> Lock:
        with self._write() as conn:
            self._check_holder(conn, lock.environment, lock.service, lock.region, lock)
            renewed = Lock(lock.environment, lock.service, lock.region, lock.owner,
                           lock.acquired_at, utcnow() + ttl)
            conn.execute("UPDATE locks SET expires = ?, doc = ? WHERE environment = ? AND "
                         "service = ? AND region = ?",
                         (renewed.expires_at.timestamp(), json.dumps(lock_to_dict(renewed)),
                          lock.environment, lock.service, lock.region))
        return renewed

    def release(self, lock: Lock) -> None:
        with self._write() as conn:
            self._check_holder(conn, lock.environment, lock.service, lock.region, lock)
            conn.execute("DELETE FROM locks WHERE environment = ? AND service = ? AND region = ?",
                         (lock.environment, lock.service, lock.region))

    def locks(self, environment: str) -> list[Lock]:
        with self._read() as conn:
            self._env_row(conn, environment)
            rows = conn.execute("SELECT doc FROM locks WHERE environment = ? "
                                "ORDER BY service, region", (environment,)).fetchall()
        return [lock_from_dict(json.loads(r[0])) for r in rows]

    def force_release(self, environment: str, service: str, region: str) -> bool:
        with self._write() as conn:
            self._env_row(conn, environment)
            cur = conn.execute("DELETE FROM locks WHERE environment = ? AND service = ? AND "
                               "region = ?", (environment, service, region))
            return cur.rowcount > 0

    # ------------------------------------------------------------------ manifests

    def put_manifest(self, environment: str, service: str, region: str,
                     manifest: Mapping[str, Any]) -> str:
        key = f"checksums/{environment}/{service}/{region}.json"
        with self._write() as conn:
            self._env_row(conn, environment)
            conn.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?)",
                         (environment, service, region, json.dumps(plain(manifest), sort_keys=True)))
        return key

    def get_manifest(self, environment: str, service: str, region: str) -> Mapping[str, Any] | None:
        with self._read() as conn:
            self._env_row(conn, environment)
            row = conn.execute("SELECT doc FROM manifests WHERE environment = ? AND service = ? "
                               "AND region = ?", (environment, service, region)).fetchone()
        return None if row is None else json.loads(row[0])
