"""The ``s3`` state backend: mila's whole state in one S3 bucket, no DynamoDB.

Objects::

    envs/<env>.json                              the environment and every record of it
    locks/<env>/<service>/<region>.json          a lease (owner, expiry)
    history/<env>/<iso time>#<service>#<region>.json   one object per action, kept
    manifests/<env>/<service>/<region>.json      per-file checksum manifests

Every write that must not race is an S3 conditional write:

* creating an object that must not exist yet (an environment, a lock, a history entry) is a
  ``PutObject`` with ``If-None-Match: *`` — of many concurrent writers exactly one succeeds,
  the others get ``412 Precondition Failed``;
* changing an object someone else may change too is a read, then a ``PutObject`` (or
  ``DeleteObject``) with ``If-Match: <the ETag read>`` — it lands only if the object is still
  the one read. Taking over an expired lease, renewing or releasing a lease (conditional on
  the owner read in it) and updating an environment's records all work this way; a 412 means
  "someone else got there first": read again and decide again.

Because an environment and all its records are one object, ``records(env)`` is one
``GetObject`` and deleting an environment cannot race a record write (both are conditional
on the same ETag). A record write checks the lease first and then writes the environment
conditionally: S3 has no transaction spanning two objects, so a lease that expires in the
milliseconds between the two is not noticed — leases last minutes and are renewed long before
they expire, so that window is never reached in practice; the ``aws`` backend closes it with
a DynamoDB transaction.

Expiry is compared with this machine's clock, as the ``aws`` backend does.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
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
from mila.state_json import (
    dt_to_str,
    environment_from_dict,
    environment_to_dict,
    history_from_dict,
    history_to_dict,
    lock_from_dict,
    lock_to_dict,
    record_from_dict,
    record_to_dict,
)

#: How often a conditional write that lost a race is tried again before giving up.
MAX_ATTEMPTS = 50
_PRECONDITION = {"PreconditionFailed", "412"}
#: S3 answers 409 to a conditional write racing another one on the same key: retry it.
_CONFLICT = {"ConditionalRequestConflict", "409"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_MISSING_BUCKET = {"NoSuchBucket"}


_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()


def s3_client(region: str) -> Any:
    """A shared S3 client per region and target: boto3 clients are thread-safe, but creating
    one costs a quarter of a second and is not. ``AWS_ENDPOINT_URL`` (the sandbox) is honoured
    by boto3 itself, and is part of the cache key with the access key id."""
    key = (region, os.environ.get("AWS_ENDPOINT_URL", ""), os.environ.get("AWS_ACCESS_KEY_ID", ""),
           os.environ.get("AWS_PROFILE", ""))
    with _clients_lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            _clients[key] = boto3.session.Session().client(
                "s3", region_name=region,
                config=Config(retries={"mode": "adaptive", "max_attempts": 10}))
        return _clients[key]


class _Precondition(Exception):
    """A conditional write found the object not as expected (someone else changed it)."""


def env_key(environment: str) -> str:
    return f"envs/{environment}.json"


def lock_key(environment: str, service: str, region: str) -> str:
    return f"locks/{environment}/{service}/{region}.json"


def history_prefix(environment: str) -> str:
    return f"history/{environment}/"


def manifest_key(environment: str, service: str, region: str) -> str:
    return f"manifests/{environment}/{service}/{region}.json"


def _plain(value: Any) -> Any:
    """Read-only mappings and tuples (frozen values) as JSON can write them."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store a {type(value).__name__} in the state")


def _dumps(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(_plain(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_plain).encode()


class S3State:
    """:class:`mila.protocols.StateBackend` in one S3 bucket (see the module docstring)."""

    name = "s3"

    def __init__(self, bucket: str, region: str) -> None:
        self.bucket = bucket
        self.region = region
        self._client: Any = None

    def location(self) -> str:
        return f"s3://{self.bucket} ({self.region})"

    def iam_policy(self) -> dict[str, Any]:
        """What this backend needs on top of the deployers' permissions
        (``mila init --print-policy``)."""
        arn = f"arn:aws:s3:::{self.bucket}"
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "MilaS3StateBucket", "Effect": "Allow", "Resource": arn, "Action": [
                "s3:CreateBucket", "s3:ListBucket", "s3:GetBucketVersioning",
                "s3:PutBucketVersioning", "s3:GetEncryptionConfiguration",
                "s3:PutEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
                "s3:PutBucketPublicAccessBlock"]},
            {"Sid": "MilaS3StateObjects", "Effect": "Allow", "Resource": f"{arn}/*",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]},
        ]}

    # ------------------------------------------------------------------ plumbing

    @property
    def s3(self) -> Any:
        """An S3 client for the bucket's region (see :func:`s3_client`)."""
        if self._client is None:
            self._client = s3_client(self.region)
        return self._client

    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """botocore errors → mila's: a missing bucket is an uninitialised state, a failed
        precondition is :class:`_Precondition`, anything else a :class:`StateError`."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_BUCKET:
                raise StateNotInitialized(self.location()) from None
            if code in _PRECONDITION or code in _CONFLICT:
                raise _Precondition(code) from None
            raise StateError(f"{what} failed: {exc}") from None
        except BotoCoreError as exc:
            raise StateError(f"{what} failed: {exc}",
                             hint="check your network, AWS credentials and AWS_ENDPOINT_URL"
                             ) from None

    def _get(self, key: str) -> tuple[dict[str, Any], str] | None:
        """The object's JSON and ETag, or ``None`` if there is no such object."""
        from botocore.exceptions import ClientError

        try:
            with self._calls(f"reading s3://{self.bucket}/{key}"):
                try:
                    answer = self.s3.get_object(Bucket=self.bucket, Key=key)
                except ClientError as exc:
                    if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_KEY:
                        return None
                    raise
                return json.loads(answer["Body"].read()), str(answer["ETag"])
        except _Precondition:  # pragma: no cover - a GET has no precondition
            raise StateError(f"reading s3://{self.bucket}/{key} failed") from None

    def _put(self, key: str, doc: Mapping[str, Any], *, if_match: str | None = None,
             if_none_match: bool = False) -> None:
        """Write ``doc``; raises :class:`_Precondition` if the condition does not hold."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": _dumps(doc),
                                "ContentType": "application/json"}
        if if_match is not None:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = "*"
        with self._calls(f"writing s3://{self.bucket}/{key}"):
            self.s3.put_object(**args)

    def _delete(self, key: str, *, if_match: str | None = None) -> None:
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_match is not None:
            args["IfMatch"] = if_match
        with self._calls(f"deleting s3://{self.bucket}/{key}"):
            try:
                self.s3.delete_object(**args)
            except ClientError as exc:
                # a conditional delete of an object that is gone: the condition failed
                if if_match is not None and \
                        str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_KEY:
                    raise _Precondition("gone") from None
                raise

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with self._calls(f"listing s3://{self.bucket}/{prefix}"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def _environment_doc(self, environment: str) -> tuple[dict[str, Any], str]:
        """The environment's object (its ``environment`` and ``records``) and its ETag."""
        found = self._get(env_key(environment))
        if found is None or found[0].get("deleted"):
            raise EnvironmentNotFound(environment)
        return found

    def _update_environment(self, environment: str, change: Any) -> Any:
        """Read-modify-write the environment's object, conditional on its ETag; ``change(doc)``
        edits ``doc`` in place (raising to give up) and returns the result."""
        for _ in range(MAX_ATTEMPTS):
            doc, etag = self._environment_doc(environment)
            result = change(doc)
            try:
                self._put(env_key(environment), doc, if_match=etag)
                return result
            except _Precondition:
                continue  # someone wrote it meanwhile: read again, decide again
        raise StateError(f"updating environment '{environment}' failed: it kept changing")

    # ------------------------------------------------------------------ init

    def init(self) -> list[str]:
        from botocore.exceptions import ClientError

        def code(exc: ClientError) -> str:
            return str(exc.response.get("Error", {}).get("Code", ""))

        done: list[str] = []
        with self._calls(f"creating bucket {self.bucket}"):
            try:
                self.s3.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if code(exc) in ("403", "AccessDenied", "Forbidden"):
                    raise StateError(f"S3 bucket '{self.bucket}' exists but this identity "
                                     "cannot use it (bucket names are global)",
                                     hint="set [state].bucket to another name") from None
                if code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                args: dict[str, Any] = {"Bucket": self.bucket}
                if self.region != "us-east-1":
                    args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    self.s3.create_bucket(**args)
                    done.append(f"S3 bucket {self.bucket}")
                except ClientError as exc2:
                    if code(exc2) != "BucketAlreadyOwnedByYou":
                        raise
            if self.s3.get_bucket_versioning(Bucket=self.bucket).get("Status") != "Enabled":
                self.s3.put_bucket_versioning(Bucket=self.bucket,
                                              VersioningConfiguration={"Status": "Enabled"})
                done.append(f"versioning on {self.bucket}")
            try:
                self.s3.get_bucket_encryption(Bucket=self.bucket)
            except ClientError as exc:
                if code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                    raise
                self.s3.put_bucket_encryption(
                    Bucket=self.bucket, ServerSideEncryptionConfiguration={"Rules": [
                        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
                done.append(f"default encryption on {self.bucket}")
            block = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
            try:
                current = self.s3.get_public_access_block(
                    Bucket=self.bucket)["PublicAccessBlockConfiguration"]
            except ClientError as exc:
                if code(exc) != "NoSuchPublicAccessBlockConfiguration":
                    raise
                current = {}
            if any(not current.get(k) for k in block):
                self.s3.put_public_access_block(Bucket=self.bucket,
                                                PublicAccessBlockConfiguration=block)
                done.append(f"public access block on {self.bucket}")
        return done

    # ------------------------------------------------------------------ environments

    def create_environment(self, name: str, regions: Iterable[str], created_by: str) -> Environment:
        env = Environment(name=name, regions=tuple(regions), created_at=utcnow(),
                          created_by=created_by)
        doc = {"environment": environment_to_dict(env), "records": {}}
        for _ in range(MAX_ATTEMPTS):
            try:
                self._put(env_key(name), doc, if_none_match=True)
                return env
            except _Precondition:
                pass
            found = self._get(env_key(name))
            if found is None:
                continue  # deleted meanwhile
            if not found[0].get("deleted"):
                raise EnvironmentExists(name)
            try:  # the tombstone of a deleted environment: replace it, if still the same
                self._put(env_key(name), doc, if_match=found[1])
                return env
            except _Precondition:
                continue
        raise StateError(f"creating environment '{name}' failed: it kept changing")

    def get_environment(self, name: str) -> Environment:
        return environment_from_dict(self._environment_doc(name)[0]["environment"])

    def list_environments(self) -> list[Environment]:
        out = []
        for key in self._keys("envs/"):
            found = self._get(key)
            if found is not None and not found[0].get("deleted"):
                out.append(environment_from_dict(found[0]["environment"]))
        return sorted(out, key=lambda e: e.name)

    def set_regions(self, name: str, regions: Iterable[str]) -> Environment:
        regions = tuple(regions)

        def change(doc: dict[str, Any]) -> Environment:
            current = environment_from_dict(doc["environment"])
            env = Environment(name, regions, current.created_at, current.created_by)
            doc["environment"] = environment_to_dict(env)
            return env

        result: Environment = self._update_environment(name, change)
        return result

    def delete_environment(self, name: str) -> None:
        for _ in range(MAX_ATTEMPTS):
            doc, etag = self._environment_doc(name)
            records = sorted(tuple(k.split("#", 1)) for k in doc.get("records", {}))
            if records:
                shown = ", ".join(f"{s} ({r})" for s, r in records[:5])
                more = f" and {len(records) - 5} more" if len(records) > 5 else ""
                raise StateError(f"environment '{name}' still has {len(records)} deployed "
                                 f"service(s): {shown}{more}",
                                 hint=f"destroy them first (`mila remove -e {name}`)")
            # A tombstone, conditional on the ETag read: a record written meanwhile makes it
            # fail (and we look again); any write after it finds the environment gone.
            try:
                self._put(env_key(name), {"deleted": True}, if_match=etag)
            except _Precondition:
                continue
            break
        else:
            raise StateError(f"deleting environment '{name}' failed: it kept changing")
        for key in self._keys(f"locks/{name}/"):
            self._delete(key)
        found = self._get(env_key(name))
        if found is not None and found[0].get("deleted"):
            with contextlib.suppress(_Precondition):  # unless someone re-created it since
                self._delete(env_key(name), if_match=found[1])

    # ------------------------------------------------------------------ records

    def records(self, environment: str) -> list[Record]:
        doc, _ = self._environment_doc(environment)
        return sorted((record_from_dict(r) for r in doc.get("records", {}).values()),
                      key=lambda r: (r.service, r.region))

    def _check_holder(self, lock: Lock, environment: str, service: str, region: str) -> None:
        """Raise :class:`LockLost` unless ``lock`` is the live lease on (service, region)."""
        if (lock.environment, lock.service, lock.region) != (environment, service, region):
            raise LockLost(f"the lock on {lock.service} in {lock.environment}/{lock.region} "
                           f"does not cover {service} in {environment}/{region}")
        held = self._live_lease(lock)
        if held is None:
            raise self._lost(lock)

    def _live_lease(self, lock: Lock) -> str | None:
        """The ETag of ``lock``'s object if it is still held by ``lock``'s owner and unexpired."""
        found = self._get(lock_key(lock.environment, lock.service, lock.region))
        if found is None:
            return None
        doc, etag = found
        current = lock_from_dict(doc)
        if current.owner.owner_id != lock.owner.owner_id or current.expired():
            return None
        return etag

    def _lost(self, lock: Lock) -> LockLost:
        return LockLost(f"the lock on {lock.service} in {lock.environment}/{lock.region} was "
                        "lost (expired, released, or taken over by another run)",
                        hint="the run stopped before changing the state; run it again")

    def get_record(self, environment: str, service: str, region: str) -> Record | None:
        doc, _ = self._environment_doc(environment)
        found = doc.get("records", {}).get(f"{service}#{region}")
        return None if found is None else record_from_dict(found)

    def put_record(self, record: Record, lock: Lock) -> None:
        def change(doc: dict[str, Any]) -> None:
            self._check_holder(lock, record.environment, record.service, record.region)
            records = doc.setdefault("records", {})
            key = f"{record.service}#{record.region}"
            if record.version > 0:  # the write follows the version read (see Record.version)
                stored = record_from_dict(records[key]) if key in records else None
                if (stored.version if stored else 0) != record.version - 1:
                    raise RecordChanged(record.environment, record.service, record.region,
                                        stored.version if stored else None,
                                        record.version - 1, current=stored)
            records[key] = record_to_dict(record)

        self._update_environment(record.environment, change)

    def delete_record(self, environment: str, service: str, region: str, lock: Lock) -> None:
        def change(doc: dict[str, Any]) -> None:
            self._check_holder(lock, environment, service, region)
            doc.setdefault("records", {}).pop(f"{service}#{region}", None)

        self._update_environment(environment, change)

    # ------------------------------------------------------------------ history

    def append_history(self, entry: HistoryEntry) -> None:
        self._environment_doc(entry.environment)
        at = entry.at
        for _ in range(MAX_ATTEMPTS):
            key = f"{history_prefix(entry.environment)}{dt_to_str(at)}#{entry.service}" \
                  f"#{entry.region}.json"
            try:
                self._put(key, history_to_dict(entry), if_none_match=True)
                return
            except _Precondition:
                at = at + timedelta(microseconds=1)  # same instant, same key: next microsecond
        raise StateError("writing history failed: no free time slot")

    def history(self, environment: str, service: str | None = None,
                limit: int | None = None) -> list[HistoryEntry]:
        self._environment_doc(environment)
        prefix = history_prefix(environment)
        # keys sort by time (fixed-width ISO); the service is in the key, so filtering by
        # service reads only the entries returned
        keys = sorted(self._keys(prefix), reverse=True)
        if service is not None:
            keys = [k for k in keys if k[len(prefix):].split("#")[1] == service]
        if limit is not None:
            keys = keys[:max(limit, 0)]
        out = []
        for key in keys:
            found = self._get(key)
            if found is not None:
                out.append(history_from_dict(found[0]))
        return out

    # ------------------------------------------------------------------ locks

    def acquire_lock(self, environment: str, service: str, region: str, owner: LockOwner,
                     ttl: timedelta) -> Lock:
        self._environment_doc(environment)
        key = lock_key(environment, service, region)
        for _ in range(MAX_ATTEMPTS):
            now = utcnow()
            lock = Lock(environment, service, region, owner, acquired_at=now,
                        expires_at=now + ttl)
            try:  # a free lock: create it; exactly one of many concurrent creators wins
                self._put(key, lock_to_dict(lock), if_none_match=True)
                return lock
            except _Precondition:
                pass
            found = self._get(key)
            if found is None:
                continue  # released meanwhile: try again
            holder = lock_from_dict(found[0])
            if not holder.expired(now):
                raise LockHeld(holder, f"the lock on {service} in {environment}/{region} is "
                                       f"held by {holder.owner.user}@{holder.owner.host}")
            try:  # take the expired lease over, only if it is still exactly the lease we read
                self._put(key, lock_to_dict(lock), if_match=found[1])
                return lock
            except _Precondition:
                continue  # another run took it over (or it was released) first: look again
        raise StateError(f"could not lock {service} in {environment}/{region}: "
                         "the lock kept changing hands")

    def heartbeat(self, lock: Lock, ttl: timedelta) -> Lock:
        etag = self._live_lease(lock)
        if etag is None:
            raise self._lost(lock)
        renewed = Lock(lock.environment, lock.service, lock.region, lock.owner,
                       lock.acquired_at, utcnow() + ttl)
        try:
            self._put(lock_key(lock.environment, lock.service, lock.region),
                      lock_to_dict(renewed), if_match=etag)
        except _Precondition:
            raise self._lost(lock) from None
        return renewed

    def release(self, lock: Lock) -> None:
        etag = self._live_lease(lock)
        if etag is None:
            raise self._lost(lock)
        try:
            self._delete(lock_key(lock.environment, lock.service, lock.region), if_match=etag)
        except _Precondition:
            raise self._lost(lock) from None

    def locks(self, environment: str) -> list[Lock]:
        self._environment_doc(environment)
        out = []
        for key in self._keys(f"locks/{environment}/"):
            found = self._get(key)
            if found is not None:
                out.append(lock_from_dict(found[0]))
        return sorted(out, key=lambda lk: (lk.service, lk.region))

    def force_release(self, environment: str, service: str, region: str) -> bool:
        self._environment_doc(environment)
        key = lock_key(environment, service, region)
        if self._get(key) is None:
            return False
        self._delete(key)
        return True

    # ------------------------------------------------------------------ manifests

    def put_manifest(self, environment: str, service: str, region: str,
                     manifest: Mapping[str, Any]) -> str:
        self._environment_doc(environment)
        key = manifest_key(environment, service, region)
        self._put(key, manifest)
        return key

    def get_manifest(self, environment: str, service: str, region: str) -> Mapping[str, Any] | None:
        self._environment_doc(environment)
        found = self._get(manifest_key(environment, service, region))
        return found[0] if found is not None else None

