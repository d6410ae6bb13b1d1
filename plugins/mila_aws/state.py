"""The ``aws`` state backend: one DynamoDB table and one S3 bucket in the project's default region.

Table ``pk``/``sk`` (both strings), on-demand, encrypted, point-in-time recovery and deletion
protection on::

    ENV#dev   META                    the environment (regions, created by/at)
    ENV#dev   SVC#api#eu-west-1       the current deployment of api in eu-west-1
    ENV#dev   LOCK#api#eu-west-1      the lease on api in eu-west-1 (owner_id, expires)
    ENVS      dev                     a copy of dev's META, so listing needs one Query
    HIST#dev  <iso time>#api#eu-west-1  one row per action, kept

``records(env)`` is one paginated Query of ``ENV#env`` (it also proves the environment exists).
Every write that depends on another item is one ``TransactWriteItems`` with a
``ConditionCheck``: a record write on the lock item (``owner_id`` matches and the lease has not
expired), an environment's items on its ``META``. Taking over an expired lease is a put
conditional on the *old* lease (its ``owner_id`` and ``expires``), so of two runs that both saw
it expire only one gets it. Expiry is compared with the client's clock (DynamoDB TTL deletes
lazily and is not used for correctness).

Bucket: versioned, encrypted, public access blocked, non-TLS requests denied; manifests under
``checksums/<env>/<service>/<region>.json``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
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
    plain,
    record_from_dict,
    record_to_dict,
)
from mila_aws.buckets import ensure_tls_only_policy
from mila_aws.session import client, verify_target

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"},
              {"AttributeName": "sk", "KeyType": "RANGE"}]
ENVS_PK = "ENVS"


def env_pk(environment: str) -> str:
    return f"ENV#{environment}"


def svc_sk(service: str, region: str) -> str:
    return f"SVC#{service}#{region}"


def lock_sk(service: str, region: str) -> str:
    return f"LOCK#{service}#{region}"


def history_pk(environment: str) -> str:
    return f"HIST#{environment}"


def manifest_key(environment: str, service: str, region: str) -> str:
    return f"checksums/{environment}/{service}/{region}.json"


# ------------------------------------------------------------------------- item encoding


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 \
            else float(value)
    if isinstance(value, Mapping):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def encode_item(doc: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    return {k: ser.serialize(_to_dynamo(v)) for k, v in doc.items()}


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    return {k: _from_dynamo(de.deserialize(v)) for k, v in item.items()}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


TRANSACT_ATTEMPTS = 6


def _with_current_time(item: dict[str, Any]) -> dict[str, Any]:
    """A transaction item whose ``:now`` (lease expiry checks) is the current time again."""
    ((op, body),) = item.items()
    values = body.get("ExpressionAttributeValues")
    if not values or ":now" not in values:
        return item
    return {op: {**body, "ExpressionAttributeValues": {**values, ":now": _n(time.time())}}}


class _TransactionCanceled(Exception):
    """A transaction was cancelled; ``codes[i]`` is the reason of its i-th item (``None``: ok),
    ``items[i]`` the item as it was when an item asked for ``ReturnValuesOnConditionCheckFailure``."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        codes = [r.get("Code") for r in reasons]
        super().__init__(codes)
        self.codes = [None if c in (None, "None") else c for c in codes]
        self.items = [decode_item(r["Item"]) if r.get("Item") else None for r in reasons]

    def failed(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"


class AwsState:
    """:class:`mila.protocols.StateBackend` over DynamoDB and S3 (see the module docstring)."""

    name = "aws"

    def __init__(self, table: str, bucket: str, region: str, *, project: str = "mila",
                 artifacts_bucket: str | None = None) -> None:
        self.table = table
        self.bucket = bucket
        self.region = region
        self.project = project
        self.artifacts_bucket = artifacts_bucket
        #: remarks from the last ``init`` that are not changes (shown by ``mila init``)
        self.notes: list[str] = []

    def location(self) -> str:
        return f"dynamodb:{self.table} + s3://{self.bucket} ({self.region})"

    def iam_policy(self) -> dict[str, Any]:
        """The IAM policy document mila needs for this project (``mila init --print-policy``)."""
        from mila_aws.policy import iam_policy

        return iam_policy(table=self.table, bucket=self.bucket, region=self.region)

    # ------------------------------------------------------------------ plumbing

    def _ddb(self) -> Any:
        verify_target(self.region)
        return client("dynamodb", self.region)

    def _s3(self) -> Any:
        verify_target(self.region)
        return client("s3", self.region)

    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Turn botocore errors into :class:`StateError`s for the user."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ResourceNotFoundException", "NoSuchBucket"):
                raise StateNotInitialized(self.location()) from None
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                raise _TransactionCanceled([r or {} for r in reasons]) from None
            raise StateError(f"{what} failed: {exc}") from None
        except BotoCoreError as exc:
            raise StateError(f"{what} failed: {exc}",
                             hint="check your network, AWS credentials and AWS_ENDPOINT_URL"
                             ) from None

    def _transact(self, items: list[dict[str, Any]], what: str) -> None:
        """One ``TransactWriteItems``; retried (it applied nothing) while DynamoDB cancels it
        only for ``TransactionConflict`` — another transaction touching the same items, which
        AWS reports instead of serialising, and which botocore does not retry."""
        for attempt in range(TRANSACT_ATTEMPTS):
            try:
                with self._calls(what):
                    self._ddb().transact_write_items(TransactItems=items)
                return
            except _TransactionCanceled as exc:
                conflict = "TransactionConflict" in exc.codes and \
                    "ConditionalCheckFailed" not in exc.codes
                if not conflict or attempt == TRANSACT_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * 2 ** attempt))
                items = [_with_current_time(item) for item in items]

    def _meta_check(self, environment: str) -> dict[str, Any]:
        """A transaction item: the environment exists and is not being deleted."""
        return {"ConditionCheck": {
            "TableName": self.table,
            "Key": {"pk": _s(env_pk(environment)), "sk": _s("META")},
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(deleting)",
        }}

    def _holder_check(self, lock: Lock) -> dict[str, Any]:
        """A transaction item: ``lock`` is still held (same owner, lease not expired)."""
        return {"ConditionCheck": {
            "TableName": self.table,
            "Key": {"pk": _s(env_pk(lock.environment)), "sk": _s(lock_sk(lock.service, lock.region))},
            "ConditionExpression": "owner_id = :o AND expires > :now",
            "ExpressionAttributeValues": {":o": _s(lock.owner.owner_id),
                                          ":now": _n(time.time())},
        }}

    def _get(self, pk: str, sk: str, what: str) -> dict[str, Any] | None:
        with self._calls(what):
            answer = self._ddb().get_item(TableName=self.table, ConsistentRead=True,
                                          Key={"pk": _s(pk), "sk": _s(sk)})
        item = answer.get("Item")
        return decode_item(item) if item else None

    def _query(self, what: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        with self._calls(what):
            paginator = self._ddb().get_paginator("query")
            for page in paginator.paginate(TableName=self.table, ConsistentRead=True, **kwargs):
                for item in page.get("Items", []):
                    yield decode_item(item)

    def _partition(self, environment: str) -> dict[str, dict[str, Any]]:
        """Every item of ``ENV#environment`` by sort key, in one paginated Query."""
        items = {item["sk"]: item for item in self._query(
            f"reading environment '{environment}'",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(env_pk(environment))})}
        meta = items.get("META")
        if meta is None or meta.get("deleting"):
            raise EnvironmentNotFound(environment)
        return items

    def _require_environment(self, environment: str) -> Environment:
        meta = self._get(env_pk(environment), "META", f"reading environment '{environment}'")
        if meta is None or meta.get("deleting"):
            raise EnvironmentNotFound(environment)
        return environment_from_dict(meta)

    # ------------------------------------------------------------------ init

    def init(self) -> list[str]:
        verify_target(self.region)
        self.notes = []
        return self._init_table() + self._init_bucket()

    def _init_table(self) -> list[str]:
        from botocore.exceptions import ClientError

        ddb = client("dynamodb", self.region)
        done: list[str] = []
        with self._calls(f"creating table {self.table}"):
            try:
                table = ddb.describe_table(TableName=self.table)["Table"]
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                ddb.create_table(
                    TableName=self.table, KeySchema=KEY_SCHEMA, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}],
                    SSESpecification={"Enabled": True}, DeletionProtectionEnabled=True,
                    Tags=[{"Key": "mila", "Value": "state"}])
                done.append(f"DynamoDB table {self.table} (on-demand, encrypted, deletion "
                            "protection on)")
                table = self._wait_active(ddb)
            self._check_schema(table)
            if not table.get("DeletionProtectionEnabled"):  # a table made by an older mila
                ddb.update_table(TableName=self.table, DeletionProtectionEnabled=True)
                done.append(f"deletion protection on {self.table}")
            backups = ddb.describe_continuous_backups(TableName=self.table)
            pitr = backups["ContinuousBackupsDescription"].get(
                "PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
            if pitr != "ENABLED":
                ddb.update_continuous_backups(
                    TableName=self.table,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
                done.append(f"point-in-time recovery on {self.table}")
        return done

    def _wait_active(self, ddb: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 300
        while True:
            table: dict[str, Any] = ddb.describe_table(TableName=self.table)["Table"]
            if table.get("TableStatus") == "ACTIVE" or time.monotonic() > deadline:
                return table
            time.sleep(1)

    def _check_schema(self, table: Mapping[str, Any]) -> None:
        keys = sorted((k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", []))
        types = {a["AttributeName"]: a["AttributeType"]
                 for a in table.get("AttributeDefinitions", [])}
        if keys != [("pk", "HASH"), ("sk", "RANGE")] or types.get("pk") != "S" \
                or types.get("sk") != "S":
            shown = ", ".join(f"{n} {t} ({types.get(n, '?')})" for n, t in keys)
            raise StateError(
                f"DynamoDB table '{self.table}' exists with a different key schema ({shown}); "
                "mila needs pk (string, HASH) and sk (string, RANGE) and never modifies it",
                hint="set [state].table in mila.toml to another name, or delete that table")

    def _init_bucket(self) -> list[str]:
        from botocore.exceptions import ClientError

        s3 = client("s3", self.region)
        done: list[str] = []

        def code(exc: ClientError) -> str:
            return str(exc.response.get("Error", {}).get("Code", ""))

        with self._calls(f"creating bucket {self.bucket}"):
            try:
                s3.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if code(exc) in ("403", "AccessDenied", "Forbidden"):
                    raise StateError(f"S3 bucket '{self.bucket}' exists but this identity cannot "
                                     "use it (bucket names are global: another account may own "
                                     "it)", hint="set [state].checksums to another name") from None
                if code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                args: dict[str, Any] = {"Bucket": self.bucket}
                if self.region != "us-east-1":
                    args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    s3.create_bucket(**args)
                    done.append(f"S3 bucket {self.bucket}")
                except ClientError as exc2:
                    if code(exc2) != "BucketAlreadyOwnedByYou":
                        raise
            if s3.get_bucket_versioning(Bucket=self.bucket).get("Status") != "Enabled":
                s3.put_bucket_versioning(Bucket=self.bucket,
                                         VersioningConfiguration={"Status": "Enabled"})
                done.append(f"versioning on {self.bucket}")
            try:
                s3.get_bucket_encryption(Bucket=self.bucket)
            except ClientError as exc:
                if code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                    raise
                s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                               "BucketKeyEnabled": True}]})
                done.append(f"default encryption on {self.bucket}")
            block = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
            try:
                current = s3.get_public_access_block(
                    Bucket=self.bucket)["PublicAccessBlockConfiguration"]
            except ClientError as exc:
                if code(exc) != "NoSuchPublicAccessBlockConfiguration":
                    raise
                current = {}
            if any(not current.get(k) for k in block):
                s3.put_public_access_block(Bucket=self.bucket,
                                           PublicAccessBlockConfiguration=block)
                done.append(f"public access block on {self.bucket}")
            if ensure_tls_only_policy(s3, self.bucket):
                done.append(f"TLS-only bucket policy on {self.bucket}")
        return done

    # ------------------------------------------------------------------ environments

    def create_environment(self, name: str, regions: Iterable[str], created_by: str) -> Environment:
        env = Environment(name=name, regions=tuple(regions), created_at=utcnow(),
                          created_by=created_by)
        doc = environment_to_dict(env)
        try:
            self._transact([
                {"Put": {"TableName": self.table,
                         "Item": encode_item({"pk": env_pk(name), "sk": "META", **doc}),
                         "ConditionExpression": "attribute_not_exists(pk)",
                         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                {"Put": {"TableName": self.table,
                         "Item": encode_item({"pk": ENVS_PK, "sk": name, **doc})}},
            ], f"creating environment '{name}'")
        except _TransactionCanceled as exc:
            if exc.failed(0):
                existing = exc.items[0] if exc.items else None
                if existing is not None and environment_from_dict(existing) == env:
                    return env  # our own write, resent by the SDK after a lost response
                raise EnvironmentExists(name) from None
            raise StateError(f"creating environment '{name}' failed: {exc.codes}") from None
        return env

    def get_environment(self, name: str) -> Environment:
        return self._require_environment(name)

    def list_environments(self) -> list[Environment]:
        items = self._query("listing environments", KeyConditionExpression="pk = :pk",
                            ExpressionAttributeValues={":pk": _s(ENVS_PK)})
        return sorted((environment_from_dict(i) for i in items), key=lambda e: e.name)

    def set_regions(self, name: str, regions: Iterable[str]) -> Environment:
        current = self._require_environment(name)
        env = Environment(name, tuple(regions), current.created_at, current.created_by)
        doc = environment_to_dict(env)
        try:
            self._transact([
                {"Put": {"TableName": self.table,
                         "Item": encode_item({"pk": env_pk(name), "sk": "META", **doc}),
                         "ConditionExpression":
                             "attribute_exists(pk) AND attribute_not_exists(deleting)"}},
                {"Put": {"TableName": self.table,
                         "Item": encode_item({"pk": ENVS_PK, "sk": name, **doc})}},
            ], f"updating environment '{name}'")
        except _TransactionCanceled:
            raise EnvironmentNotFound(name) from None
        return env

    def delete_environment(self, name: str) -> None:
        from botocore.exceptions import ClientError

        meta_key = {"pk": _s(env_pk(name)), "sk": _s("META")}
        # 1. mark it: from now on no record, lock or history write can succeed (they all
        #    condition on META without `deleting`), so the check below cannot go stale.
        try:
            self._ddb().update_item(
                TableName=self.table, Key=meta_key, UpdateExpression="SET deleting = :t",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":t": {"BOOL": True}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise EnvironmentNotFound(name) from None
            with self._calls(f"deleting environment '{name}'"):
                raise
        items = {item["sk"]: item for item in self._query(
            f"reading environment '{name}'", KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(env_pk(name))})}
        records = sorted((i["service"], i["region"]) for sk, i in items.items()
                         if sk.startswith("SVC#"))
        if records:
            with self._calls(f"deleting environment '{name}'"):
                self._ddb().update_item(TableName=self.table, Key=meta_key,
                                        UpdateExpression="REMOVE deleting")
            shown = ", ".join(f"{s} ({r})" for s, r in records[:5])
            more = f" and {len(records) - 5} more" if len(records) > 5 else ""
            raise StateError(f"environment '{name}' still has {len(records)} deployed "
                             f"service(s): {shown}{more}",
                             hint=f"destroy them first (`mila remove -e {name}`)")
        # 2. delete META, the listing copy and leftover locks (history is kept).
        deletes = [{"Delete": {"TableName": self.table, "Key": meta_key}},
                   {"Delete": {"TableName": self.table,
                               "Key": {"pk": _s(ENVS_PK), "sk": _s(name)}}}]
        deletes += [{"Delete": {"TableName": self.table,
                                "Key": {"pk": _s(env_pk(name)), "sk": _s(sk)}}}
                    for sk in items if sk.startswith("LOCK#")]
        for start in range(0, len(deletes), 100):  # a transaction holds at most 100 items
            self._transact(deletes[start:start + 100], f"deleting environment '{name}'")

    # ------------------------------------------------------------------ records

    def records(self, environment: str) -> list[Record]:
        items = self._partition(environment)
        return sorted((record_from_dict(i) for sk, i in items.items() if sk.startswith("SVC#")),
                      key=lambda r: (r.service, r.region))

    def _conditional_write(self, lock: Lock, environment: str, service: str, region: str,
                           item: dict[str, Any], what: str,
                           extra: tuple[dict[str, Any], ...] = ()) -> None:
        """``item`` (and ``extra`` items) in one transaction conditional on the environment
        and on holding ``lock``; a failed ``extra`` item re-raises the cancellation."""
        if (lock.environment, lock.service, lock.region) != (environment, service, region):
            raise LockLost(f"the lock given is for {lock.service} in {lock.environment}/"
                           f"{lock.region}, not {service} in {environment}/{region}")
        try:
            self._transact([self._meta_check(environment), self._holder_check(lock), item,
                            *extra], what)
        except _TransactionCanceled as exc:
            if exc.failed(0):
                raise EnvironmentNotFound(environment) from None
            if exc.failed(1):
                raise self._lost(lock) from None
            if exc.failed(2) and item.get("Put", {}).get("ConditionExpression"):
                old = exc.items[2] if len(exc.items) > 2 else None
                current = record_from_dict(old) if old else None
                version = int(item["Put"]["ExpressionAttributeValues"][":prev"]["N"])
                raise RecordChanged(environment, service, region,
                                    current.version if current else None, version,
                                    current=current) from None
            if any(exc.failed(3 + i) for i in range(len(extra))):
                raise
            raise StateError(f"{what} failed: {exc.codes}") from None

    @staticmethod
    def _lost(lock: Lock) -> LockLost:
        return LockLost(f"this run no longer holds the lock on {lock.service} in "
                        f"{lock.environment}/{lock.region}; nothing was written",
                        hint="its lease expired or it was force-released; run again")

    def get_record(self, environment: str, service: str, region: str) -> Record | None:
        # the record and its environment in one consistent read (a first deploy has no
        # record: it used to take a second request to tell that from a missing environment)
        keys = [{"pk": _s(env_pk(environment)), "sk": _s(sk)}
                for sk in (svc_sk(service, region), "META")]
        with self._calls(f"reading the record of {service} in {environment}/{region}"):
            answer = self._ddb().transact_get_items(
                TransactItems=[{"Get": {"TableName": self.table, "Key": k}} for k in keys])
        item, meta = (r.get("Item") for r in answer["Responses"])
        if meta is None or "deleting" in meta:
            raise EnvironmentNotFound(environment)
        return record_from_dict(decode_item(item)) if item else None

    def put_record(self, record: Record, lock: Lock) -> None:
        self._conditional_write(lock, record.environment, record.service, record.region,
                                {"Put": self._record_put(record)}, self._recording(record))

    def put_record_with_history(self, record: Record, entry: HistoryEntry, lock: Lock) -> None:
        """The record and the history row in one transaction (one request, both or none)."""
        self._append_history_with(entry, lambda row: self._conditional_write(
            lock, record.environment, record.service, record.region,
            {"Put": self._record_put(record)}, self._recording(record), extra=(row,)), 3)

    @staticmethod
    def _recording(record: Record) -> str:
        return f"recording {record.service} in {record.environment}/{record.region}"

    def _record_put(self, record: Record) -> dict[str, Any]:
        item = encode_item({"pk": env_pk(record.environment),
                            "sk": svc_sk(record.service, record.region),
                            **record_to_dict(record)})
        put: dict[str, Any] = {"TableName": self.table, "Item": item}
        if record.version > 0:  # the write follows the version read (see Record.version)
            previous = record.version - 1
            put.update({
                "ConditionExpression": "#v = :prev" if previous else
                                       "attribute_not_exists(#v) OR #v = :prev",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":prev": {"N": str(previous)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
        return put

    def delete_record(self, environment: str, service: str, region: str, lock: Lock) -> None:
        key = {"pk": _s(env_pk(environment)), "sk": _s(svc_sk(service, region))}
        self._conditional_write(lock, environment, service, region,
                                {"Delete": {"TableName": self.table, "Key": key}},
                                f"deleting the record of {service} in {environment}/{region}")

    # ------------------------------------------------------------------ history

    def append_history(self, entry: HistoryEntry) -> None:
        self._append_history_with(entry, lambda row: self._transact(
            [self._meta_check(entry.environment), row],
            f"writing history of {entry.environment}"), 1)

    def _append_history_with(self, entry: HistoryEntry, write: Callable[[dict[str, Any]], None],
                             index: int) -> None:
        """``write(row)`` one transaction holding the history row at ``index`` (after the
        environment's check at 0); rows at the same instant take the next microsecond."""
        at = entry.at
        for _ in range(100):
            sk = f"{dt_to_str(at)}#{entry.service}#{entry.region}"
            item = encode_item({"pk": history_pk(entry.environment), "sk": sk,
                                **history_to_dict(entry)})
            try:
                write({"Put": {"TableName": self.table, "Item": item,
                               "ConditionExpression": "attribute_not_exists(sk)",
                               "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}})
                return
            except _TransactionCanceled as exc:
                if exc.failed(0):
                    raise EnvironmentNotFound(entry.environment) from None
                if not exc.failed(index):
                    raise StateError(f"writing history failed: {exc.codes}") from None
                existing = exc.items[index] if len(exc.items) > index else None
                if existing is not None and history_from_dict(existing) == entry:
                    return  # our own row, resent by the SDK after a lost response: no duplicate
                at = at + timedelta(microseconds=1)  # same instant, same row: next microsecond
        raise StateError("writing history failed: no free time slot")

    def history(self, environment: str, service: str | None = None,
                limit: int | None = None) -> list[HistoryEntry]:
        self._require_environment(environment)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(history_pk(environment))},
            "ScanIndexForward": False,
        }
        if service is not None:
            kwargs["FilterExpression"] = "service = :s"
            kwargs["ExpressionAttributeValues"][":s"] = _s(service)
        elif limit is not None:
            kwargs["PaginationConfig"] = {"PageSize": max(limit, 1)}
        out: list[HistoryEntry] = []
        if limit is not None and limit <= 0:
            return out
        for item in self._query(f"reading history of {environment}", **kwargs):
            out.append(history_from_dict(item))
            if limit is not None and len(out) >= limit:
                break
        return out

    # ------------------------------------------------------------------ locks

    def acquire_lock(self, environment: str, service: str, region: str, owner: LockOwner,
                     ttl: timedelta) -> Lock:
        key = {"pk": _s(env_pk(environment)), "sk": _s(lock_sk(service, region))}
        for _ in range(10):
            now = utcnow()
            lock = Lock(environment, service, region, owner, acquired_at=now,
                        expires_at=now + ttl)
            item = {**key, **encode_item({**lock_to_dict(lock), "owner_id": owner.owner_id,
                                          "expires": lock.expires_at.timestamp()})}
            try:
                self._transact([self._meta_check(environment),
                                {"Put": {"TableName": self.table, "Item": item,
                                         "ConditionExpression": "attribute_not_exists(pk)",
                                         # the holder comes back with the refusal: no extra read
                                         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}],
                               f"locking {service} in {environment}/{region}")
                return lock
            except _TransactionCanceled as exc:
                if exc.failed(0):
                    raise EnvironmentNotFound(environment) from None
                if not exc.failed(1):
                    raise StateError(f"locking failed: {exc.codes}") from None
                old = exc.items[1] if len(exc.items) > 1 else None
            if old is None:
                old = self._get(key["pk"]["S"], key["sk"]["S"], "reading a lock")
            if old is None:
                continue  # released meanwhile: try again
            holder = lock_from_dict(old)
            if holder == lock:
                return lock  # our own put, resent by the SDK after a lost response
            if not holder.expired(now):
                raise LockHeld(holder, f"the lock on {service} in {environment}/{region} is "
                                       f"held by {holder.owner.user}@{holder.owner.host}")
            # Take over the expired lease, conditional on it being exactly the lease we saw.
            try:
                self._transact([self._meta_check(environment), {"Put": {
                    "TableName": self.table, "Item": item,
                    "ConditionExpression": "owner_id = :old AND expires = :exp",
                    "ExpressionAttributeValues": {":old": _s(holder.owner.owner_id),
                                                  ":exp": {"N": str(old["expires"])}}}}],
                    f"taking over the lock on {service} in {environment}/{region}")
                return lock
            except _TransactionCanceled as exc:
                if exc.failed(0):
                    raise EnvironmentNotFound(environment) from None
                # someone else took it over or released it first: look again
        raise StateError(f"could not lock {service} in {environment}/{region}: "
                         "the lock kept changing hands")

    def heartbeat(self, lock: Lock, ttl: timedelta) -> Lock:
        from botocore.exceptions import ClientError

        renewed = Lock(lock.environment, lock.service, lock.region, lock.owner,
                       lock.acquired_at, utcnow() + ttl)
        try:
            self._ddb().update_item(
                TableName=self.table,
                Key={"pk": _s(env_pk(lock.environment)), "sk": _s(lock_sk(lock.service, lock.region))},
                UpdateExpression="SET expires = :e, expires_at = :ea",
                ConditionExpression="owner_id = :o AND expires > :now",
                ExpressionAttributeValues={":e": _n(renewed.expires_at.timestamp()),
                                           ":ea": _s(dt_to_str(renewed.expires_at) or ""),
                                           ":o": _s(lock.owner.owner_id),
                                           ":now": _n(time.time())})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise self._lost(lock) from None
            with self._calls("renewing a lock"):
                raise
        return renewed

    def release(self, lock: Lock) -> None:
        from botocore.exceptions import ClientError

        try:
            self._ddb().delete_item(
                TableName=self.table,
                Key={"pk": _s(env_pk(lock.environment)), "sk": _s(lock_sk(lock.service, lock.region))},
                ConditionExpression="owner_id = :o AND expires > :now",
                ExpressionAttributeValues={":o": _s(lock.owner.owner_id),
                                           ":now": _n(time.time())})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise self._lost(lock) from None
            with self._calls("releasing a lock"):
                raise

    def locks(self, environment: str) -> list[Lock]:
        items = self._partition(environment)
        return sorted((lock_from_dict(i) for sk, i in items.items() if sk.startswith("LOCK#")),
                      key=lambda lk: (lk.service, lk.region))

    def force_release(self, environment: str, service: str, region: str) -> bool:
        self._require_environment(environment)
        with self._calls("releasing a lock"):
            answer = self._ddb().delete_item(
                TableName=self.table, ReturnValues="ALL_OLD",
                Key={"pk": _s(env_pk(environment)), "sk": _s(lock_sk(service, region))})
        return bool(answer.get("Attributes"))

    # ------------------------------------------------------------------ manifests

    def put_manifest(self, environment: str, service: str, region: str,
                     manifest: Mapping[str, Any]) -> str:
        self._require_environment(environment)
        key = manifest_key(environment, service, region)
        body = json.dumps(plain(manifest), sort_keys=True, separators=(",", ":")).encode()
        with self._calls(f"writing s3://{self.bucket}/{key}"):
            self._s3().put_object(Bucket=self.bucket, Key=key, Body=body,
                                  ContentType="application/json")
        return key

    def get_manifest(self, environment: str, service: str, region: str) -> Mapping[str, Any] | None:
        from botocore.exceptions import ClientError

        self._require_environment(environment)
        key = manifest_key(environment, service, region)
        try:
            answer = self._s3().get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            with self._calls(f"reading s3://{self.bucket}/{key}"):
                raise
        loaded: Mapping[str, Any] = json.loads(answer["Body"].read())
        return loaded
