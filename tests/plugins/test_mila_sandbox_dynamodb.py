"""DynamoDB transactions in the sandbox: all or nothing (as on AWS and plain moto), without
moto's whole-table copy per transaction (mila_sandbox.ddb_transactions)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def make_table(ddb: Any) -> None:
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}])
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"N": "1"}})


def item(ddb: Any, sk: str) -> dict[str, Any] | None:
    return ddb.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": sk}},
                        ConsistentRead=True).get("Item")


@pytest.fixture(params=["sandbox", "plain moto"])
def ddb(request: Any) -> Any:
    server = request.getfixturevalue("sandbox" if request.param == "sandbox"
                                     else "plain_moto_server")
    if request.param != "sandbox":
        server.reset()
    client = server.client("dynamodb")
    make_table(client)
    return client


def test_a_cancelled_transaction_writes_nothing(ddb: Any) -> None:
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"S": "9"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])
    assert info.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert item(ddb, "2") is None
    assert item(ddb, "1")["v"] == {"N": "1"}


def test_a_transaction_that_passes_writes_everything(ddb: Any) -> None:
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
    ])
    assert item(ddb, "2") is not None and item(ddb, "1") is None


def test_transactions_do_not_copy_the_table(sandbox: Any) -> None:
    from moto.dynamodb.models.table import Table

    ddb = sandbox.client("dynamodb")
    make_table(ddb)
    for i in range(50):
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": f"x{i}"}})
    before = len(Table.instances_tracked)
    for i in range(20):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": str(i)}}}}])
    # moto 5.2.5 deep-copies the table on every transaction, and keeps every copy alive
    assert len(Table.instances_tracked) == before
