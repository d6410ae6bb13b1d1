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


# ---------------------------------------------------------------- reads (ddb_item_json, ddb_query)

EVERY_TYPE = {"s": {"S": "text"}, "empty": {"S": ""}, "n": {"N": "1.50"}, "b": {"B": b"\x00\xffz"},
              "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"x", b"\x01"]},
              "null": {"NULL": True}, "t": {"BOOL": True}, "f": {"BOOL": False},
              "m": {"M": {"inner": {"M": {"deep": {"L": [{"S": "x"}, {"N": "3"},
                                                         {"B": b"\x02"}]}}},
                          "none": {"M": {}}, "list": {"L": []}}},
              "l": {"L": [{"M": {"k": {"SS": ["z"]}}}, {"NULL": True}, {"BOOL": False}]}}


def fill(ddb: Any) -> None:
    for pk in ("a", "b", "c"):
        for i in range(12):
            ddb.put_item(TableName="t", Item={"pk": {"S": pk}, "sk": {"S": f"k{i:02d}"},
                                              "i": {"N": str(i)}, **EVERY_TYPE})


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "b"}}},
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "b"}},
     "ScanIndexForward": False, "Limit": 5},
    {"KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
     "ExpressionAttributeValues": {":p": {"S": "c"}, ":s": {"S": "k0"}}},
    {"KeyConditionExpression": "pk = :p AND sk BETWEEN :x AND :y", "FilterExpression": "i > :n",
     "ExpressionAttributeValues": {":p": {"S": "a"}, ":x": {"S": "k03"}, ":y": {"S": "k09"},
                                   ":n": {"N": "5"}}},
    {"KeyConditionExpression": "pk = :p", "ProjectionExpression": "sk, m.inner, l[0]",
     "ExpressionAttributeValues": {":p": {"S": "a"}}, "Limit": 4},
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "zz"}}},
]


def all_pages(ddb: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    pages, start = [], None
    while True:
        page = ddb.query(TableName="t", ConsistentRead=True, **query,
                         **({"ExclusiveStartKey": start} if start else {}))
        page.pop("ResponseMetadata")
        pages.append(page)
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages


def test_reads_answer_exactly_as_plain_moto(sandbox: Any, plain_moto_server: Any) -> None:
    """Items written straight from moto's wire form and Queries of one partition give the same
    answers as moto's own code: every attribute type, nested maps and lists, pages (Limit and
    ExclusiveStartKey), reverse order, key conditions, filters and projections."""
    plain_moto_server.reset()
    ddbs = [sandbox.client("dynamodb"), plain_moto_server.client("dynamodb")]
    for ddb in ddbs:
        make_table(ddb)
        fill(ddb)
    for query in QUERIES:
        ours, theirs = (all_pages(ddb, query) for ddb in ddbs)
        assert ours == theirs, query
    key = {"pk": {"S": "c"}, "sk": {"S": "k07"}}
    ours, theirs = (ddb.get_item(TableName="t", Key=key)["Item"] for ddb in ddbs)
    assert ours == theirs and ours["b"] == {"B": b"\x00\xffz"}
    ours, theirs = (ddb.scan(TableName="t", Limit=7)["Items"] for ddb in ddbs)
    assert ours == theirs


def test_a_query_does_not_sort_the_rest_of_the_table(sandbox: Any, monkeypatch: Any) -> None:
    """A Query's work follows the partition it reads, not the size of the table (moto sorts
    every item of the table for each Query)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    ddb = sandbox.client("dynamodb")
    make_table(ddb)
    for i in range(300):  # another partition, as mila's history next to its records
        ddb.put_item(TableName="t", Item={"pk": {"S": "HIST"}, "sk": {"S": f"{i:05d}"}})
    compared = []
    real_lt = DynamoType.__lt__
    monkeypatch.setattr(DynamoType, "__lt__",
                        lambda self, other: compared.append(1) or real_lt(self, other))
    items = ddb.query(TableName="t", KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": "a"}})["Items"]
    assert [i["sk"] for i in items] == [{"S": "1"}]
    assert len(compared) < 50, len(compared)


def test_items_are_written_without_the_generic_member_search(sandbox: Any,
                                                             monkeypatch: Any) -> None:
    """moto's serializer looks up every member of every AttributeValue under each of its alias
    names; the sandbox writes wire-form items directly (same answer, see above)."""
    from moto.core.serialize import XFormedAttributePicker

    ddb = sandbox.client("dynamodb")
    make_table(ddb)
    fill(ddb)
    lookups = []
    real = XFormedAttributePicker.__call__
    monkeypatch.setattr(XFormedAttributePicker, "__call__",
                        lambda self, context: lookups.append(1) or real(self, context))
    items = ddb.query(TableName="t", KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": "b"}})["Items"]
    assert len(items) == 12 and items[3]["m"] == EVERY_TYPE["m"]
    assert len(lookups) < 20, len(lookups)  # the response's own members, not the items'


def test_a_request_does_not_list_motos_folder_again(sandbox: Any, monkeypatch: Any) -> None:
    """moto routes every request by listing its package folder; the sandbox keeps the first
    listing (mila_sandbox.moto_dispatch)."""
    import os

    ddb = sandbox.client("dynamodb")
    make_table(ddb)
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(path) or real(path))
    assert item(ddb, "1") is not None
    assert listed == []


def test_method_names_follow_a_class_that_gains_a_method() -> None:
    from mila_sandbox.moto_dispatch import _cached_methods
    from moto.core.utils import method_names_from_class

    class Handler:
        def describe(self) -> None: ...

    names = _cached_methods(method_names_from_class)
    assert names(Handler) == ["describe"]
    Handler.update = lambda self: None  # type: ignore[attr-defined]
    assert names(Handler) == ["describe", "update"]
