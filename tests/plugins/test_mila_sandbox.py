"""The sandbox server and its pytest fixtures: serialised requests, reset, environment."""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError
from mila_sandbox.testing import SandboxHandle

pytestmark = pytest.mark.sandbox


def test_fixture_points_the_environment_at_the_sandbox(sandbox: SandboxHandle) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == sandbox.endpoint_url
    assert sandbox.endpoint_url.startswith("http://127.0.0.1:")
    assert os.environ["MILA_SANDBOX"] == "1"
    assert os.environ["AWS_DEFAULT_REGION"] == sandbox.region == "eu-west-1"
    assert "AWS_PROFILE" not in os.environ
    sts = boto3.client("sts")
    assert sts.get_caller_identity()["Account"] == sandbox.account_id == "123456789012"


def test_sandbox_targeted_passes_the_safety_check(sandbox: SandboxHandle) -> None:
    from mila_aws.session import sandbox_targeted, verify_target

    assert sandbox_targeted()
    assert verify_target().account == "123456789012"


def test_reset_empties_every_service(sandbox: SandboxHandle) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="kept", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept"]
    sandbox.reset()
    assert s3.list_buckets()["Buckets"] == []


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_starts_empty(sandbox: SandboxHandle, round_: int) -> None:
    ssm = boto3.client("ssm")
    assert ssm.describe_parameters()["Parameters"] == []
    ssm.put_parameter(Name="/left/behind", Value=str(round_), Type="String")


def race_conditional_puts(handle: SandboxHandle, threads: int, rounds: int) -> list[int]:
    """``threads`` threads put the same new item with ``attribute_not_exists`` at once, for
    ``rounds`` rounds; the number of winners of each round."""
    ddb = handle.client("dynamodb")
    ddb.create_table(TableName="race", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    # one client shared by the threads (botocore clients are thread-safe), a connection each
    shared = handle.new_client("dynamodb", max_pool_connections=threads)
    shared.exceptions  # noqa: B018 - built lazily without a lock in botocore; build it now
    start = threading.Barrier(threads)  # every round starts all threads at once
    outcomes: list[list[str]] = [[] for _ in range(rounds)]

    def put(i: int) -> None:
        for round_ in range(rounds):
            start.wait()
            try:
                shared.put_item(TableName="race",
                                Item={"pk": {"S": f"lock-{round_}"}, "owner": {"S": str(i)}},
                                ConditionExpression="attribute_not_exists(pk)")
                outcomes[round_].append("won")
            except ClientError as exc:
                outcomes[round_].append(exc.response["Error"]["Code"])

    workers = [threading.Thread(target=put, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for counts in map(Counter, outcomes):
        assert set(counts) <= {"won", "ConditionalCheckFailedException"}, counts
        assert sum(counts.values()) == threads
    return [Counter(o)["won"] for o in outcomes]


def test_conditional_put_race_has_exactly_one_winner_per_round(sandbox: SandboxHandle) -> None:
    """16 threads race a conditional put, 100 rounds, with a thread switch every microsecond:
    the serialised sandbox gives exactly one winner every round (plain moto: several winners
    in some rounds)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        winners = race_conditional_puts(sandbox, threads=16, rounds=100)
    finally:
        sys.setswitchinterval(old)
    assert winners == [1] * 100
