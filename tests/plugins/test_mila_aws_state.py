"""The ``aws`` backend on the sandbox: the StateBackend contract, plus how it lays out AWS.

The contract's races run here too: the sandbox serialises requests, so they test mila's
conditional writes, not moto's (see notes/moto-facts.md).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from mila_aws.session import client
from mila_aws.state import AwsState

from mila.errors import LockHeld, StateError
from mila.model import ActionKind, HistoryEntry, Status, utcnow
from mila.testing.contracts import StateBackendContract, make_owner, make_record

pytestmark = pytest.mark.sandbox
REGION = "eu-west-1"


@pytest.fixture
def aws(sandbox: Any) -> AwsState:
    return AwsState("shop-mila-state", "shop-mila-checksums", REGION, project="shop")


class TestAwsStateContract(StateBackendContract):
    race_rounds = 3
    retry_delay = 0.05  # one request at a time on the sandbox: let the holder through
    many_services = 30
    counter_workers = 6
    counter_increments = 4

    @pytest.fixture
    def fresh_backend(self, sandbox: Any) -> AwsState:
        return AwsState("contract-state", "contract-checksums", REGION)


def test_init_creates_table_and_bucket_as_specified(aws: AwsState) -> None:
    created = aws.init()
    assert any("DynamoDB table shop-mila-state" in c for c in created)
    assert any("S3 bucket shop-mila-checksums" in c for c in created)
    ddb = client("dynamodb", REGION)
    table = ddb.describe_table(TableName="shop-mila-state")["Table"]
    assert sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]) == \
        [("pk", "HASH"), ("sk", "RANGE")]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table["DeletionProtectionEnabled"] is True
    with pytest.raises(ddb.exceptions.ClientError, match="DeletionProtectionEnabled is set to True"):
        ddb.delete_table(TableName="shop-mila-state")
    backups = ddb.describe_continuous_backups(TableName="shop-mila-state")
    assert backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "PointInTimeRecoveryStatus"] == "ENABLED"
    s3 = client("s3", REGION)
    assert s3.get_bucket_location(Bucket="shop-mila-checksums")["LocationConstraint"] == REGION
    assert s3.get_bucket_versioning(Bucket="shop-mila-checksums")["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket="shop-mila-checksums")[
        "ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    block = s3.get_public_access_block(Bucket="shop-mila-checksums")[
        "PublicAccessBlockConfiguration"]
    assert all(block[k] for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                  "RestrictPublicBuckets"))
    # the TLS-only policy is set on the sandbox exactly as on AWS (and mila still gets in)
    policy = json.loads(s3.get_bucket_policy(Bucket="shop-mila-checksums")["Policy"])
    assert [st["Condition"] for st in policy["Statement"]] == [
        {"Bool": {"aws:SecureTransport": "false"}}]


def test_init_twice_changes_nothing(aws: AwsState) -> None:
    assert aws.init()
    assert aws.init() == []


def test_init_repairs_settings_turned_off(aws: AwsState) -> None:
    aws.init()
    client("s3", REGION).put_bucket_versioning(Bucket="shop-mila-checksums",
                                               VersioningConfiguration={"Status": "Suspended"})
    assert aws.init() == ["versioning on shop-mila-checksums"]
    client("dynamodb", REGION).update_table(TableName="shop-mila-state",
                                            DeletionProtectionEnabled=False)
    assert aws.init() == ["deletion protection on shop-mila-state"]


def test_bucket_in_us_east_1_has_no_location_constraint(sandbox: Any) -> None:
    state = AwsState("use1-state", "use1-checksums", "us-east-1")
    state.init()
    assert client("s3", "us-east-1").get_bucket_location(
        Bucket="use1-checksums")["LocationConstraint"] in (None, "")


def test_wrong_key_schema_is_an_error_and_the_table_is_untouched(aws: AwsState) -> None:
    ddb = client("dynamodb", REGION)
    ddb.create_table(TableName="shop-mila-state", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    with pytest.raises(StateError) as info:
        aws.init()
    assert "shop-mila-state" in str(info.value) and "key schema" in str(info.value)
    table = ddb.describe_table(TableName="shop-mila-state")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert ddb.describe_continuous_backups(TableName="shop-mila-state")[
        "ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {}).get(
        "PointInTimeRecoveryStatus") != "ENABLED"


def test_item_layout(aws: AwsState) -> None:
    aws.init()
    aws.create_environment("dev", [REGION], "alice")
    lock = aws.acquire_lock("dev", "api", REGION, make_owner(), timedelta(minutes=5))
    aws.put_record(make_record("dev", "api", REGION), lock)
    aws.append_history(HistoryEntry("dev", "api", REGION, ActionKind.DEPLOY, Status.SUCCEEDED,
                                    "abc", utcnow()))
    ddb = client("dynamodb", REGION)
    items = ddb.scan(TableName="shop-mila-state")["Items"]
    keys = sorted((i["pk"]["S"], i["sk"]["S"].split("T")[0] if i["pk"]["S"].startswith("HIST#")
                   else i["sk"]["S"]) for i in items)
    day = utcnow().strftime("%Y-%m-%d")
    assert keys == [("ENV#dev", "LOCK#api#eu-west-1"), ("ENV#dev", "META"),
                    ("ENV#dev", "SVC#api#eu-west-1"), ("ENVS", "dev"), ("HIST#dev", day)]
    (hist,) = [i for i in items if i["pk"]["S"] == "HIST#dev"]
    assert hist["sk"]["S"].endswith("#api#eu-west-1")
    (svc,) = [i for i in items if i["sk"]["S"].startswith("SVC#")]
    assert svc["outputs"]["M"]["ApiUrl"]["S"] == "https://example.com/x?y=1"
    assert svc["duration_seconds"]["N"] == "12.25"


def test_records_is_one_query(aws: AwsState) -> None:
    aws.init()
    aws.create_environment("dev", [REGION], "alice")
    owner = make_owner()
    for i in range(12):
        lock = aws.acquire_lock("dev", f"svc-{i}", REGION, owner, timedelta(minutes=5))
        aws.put_record(make_record("dev", f"svc-{i}", REGION), lock)
    calls: list[str] = []
    ddb = client("dynamodb", REGION)
    handler = lambda model, **kwargs: calls.append(model.name)  # noqa: E731
    ddb.meta.events.register("before-call.dynamodb", handler)
    try:
        records = aws.records("dev")
    finally:
        ddb.meta.events.unregister("before-call.dynamodb", handler)
    assert len(records) == 12
    assert calls == ["Query"]


def test_manifest_lives_in_s3_at_the_documented_key(aws: AwsState) -> None:
    aws.init()
    aws.create_environment("dev", [REGION], "alice")
    key = aws.put_manifest("dev", "api", REGION, {"checksum": "abc", "files": {"a.py": "1"}})
    assert key == "checksums/dev/api/eu-west-1.json"
    body = client("s3", REGION).get_object(Bucket="shop-mila-checksums", Key=key)["Body"].read()
    assert json.loads(body) == {"checksum": "abc", "files": {"a.py": "1"}}


def test_iam_policy_names_the_state_resources(aws: AwsState) -> None:
    policy = aws.iam_policy()
    text = json.dumps(policy)
    assert policy["Version"] == "2012-10-17"
    for needle in ("table/shop-mila-state", "arn:aws:s3:::shop-mila-checksums",
                   "sts:GetCallerIdentity", "dynamodb:ConditionCheckItem"):
        assert needle in text, needle
    assert "cloudformation:" not in text  # the deployers' part (mila.policy merges it)


def test_tls_statement_denies_plain_http(aws: AwsState) -> None:
    from mila_aws.buckets import tls_only_statement

    statement = tls_only_statement("shop-mila-checksums")
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert "arn:aws:s3:::shop-mila-checksums/*" in statement["Resource"]


def test_transaction_conflicts_are_retried(aws: AwsState, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS cancels a transaction that races another on the same item with TransactionConflict
    (moto never does): mila retries it, with a fresh lease-expiry check."""
    from botocore.exceptions import ClientError

    aws.init()
    aws.create_environment("dev", [REGION], "alice")
    lock = aws.acquire_lock("dev", "api", REGION, make_owner(), timedelta(minutes=5))
    real = aws._ddb()
    sent: list[list[dict[str, Any]]] = []

    class Conflicting:
        def __init__(self, conflicts: int) -> None:
            self.conflicts = conflicts

        def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> Any:
            sent.append(TransactItems)
            if self.conflicts:
                self.conflicts -= 1
                raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                             "Message": "conflict"},
                                   "CancellationReasons": [{"Code": "None"},
                                                           {"Code": "TransactionConflict"},
                                                           {"Code": "None"}]},
                                  "TransactWriteItems")
            return real.transact_write_items(TransactItems=TransactItems)

    fake = Conflicting(2)
    monkeypatch.setattr(aws, "_ddb", lambda: fake)
    aws.put_record(make_record("dev", "api", REGION), lock)
    assert len(sent) == 3
    now = [items[1]["ConditionCheck"]["ExpressionAttributeValues"][":now"]["N"] for items in sent]
    assert float(now[2]) >= float(now[0])
    monkeypatch.setattr(aws, "_ddb", lambda: real)
    assert len(aws.records("dev")) == 1

    always = Conflicting(100)
    monkeypatch.setattr(aws, "_ddb", lambda: always)
    with pytest.raises(StateError):
        aws.put_record(make_record("dev", "api", REGION, checksum="x"), lock)


def test_a_resent_write_is_not_doubled(aws: AwsState, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK resends a request whose response was lost; the server applied the first one
    (moto ignores idempotency tokens). Creating an environment or appending history must then
    neither fail nor write twice."""
    aws.init()
    real = aws._ddb()

    class Resending:
        def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> Any:
            real.transact_write_items(TransactItems=TransactItems)  # applied, response lost
            return real.transact_write_items(TransactItems=TransactItems)

    monkeypatch.setattr(aws, "_ddb", lambda: Resending())
    env = aws.create_environment("dev", [REGION], "alice")
    owner = make_owner()
    lock = aws.acquire_lock("dev", "api", REGION, owner, timedelta(minutes=5))
    with pytest.raises(LockHeld):  # a second acquire by the same run is still refused
        aws.acquire_lock("dev", "api", REGION, owner, timedelta(minutes=5))
    entry = HistoryEntry("dev", "api", REGION, ActionKind.DEPLOY, Status.SUCCEEDED, "abc",
                         utcnow(), duration_seconds=1.25)
    aws.append_history(entry)
    monkeypatch.setattr(aws, "_ddb", lambda: real)
    assert aws.list_environments() == [env]
    assert aws.history("dev") == [entry]
    assert aws.locks("dev") == [lock]
    from mila.errors import EnvironmentExists

    with pytest.raises(EnvironmentExists):  # someone else's environment is still refused
        aws.create_environment("dev", [REGION], "bob")
