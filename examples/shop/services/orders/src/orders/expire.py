"""Hourly: cancel orders still unpaid a day after they were placed."""

from __future__ import annotations

import time
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr
from shop_core import setting

UNPAID_FOR = 24 * 3600


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    table = boto3.resource("dynamodb").Table(setting("TABLE_NAME"))
    cutoff = int(time.time()) - UNPAID_FOR
    scan: dict[str, Any] = {"FilterExpression": Attr("status").eq("placed")
                            & Attr("placed_at").lt(cutoff)}
    cancelled = 0
    while True:
        page = table.scan(**scan)
        for item in page.get("Items", []):
            table.update_item(Key={"order_id": item["order_id"]},
                              UpdateExpression="SET #s = :c",
                              ConditionExpression="#s = :p",
                              ExpressionAttributeNames={"#s": "status"},
                              ExpressionAttributeValues={":c": "cancelled", ":p": "placed"})
            cancelled += 1
        if "LastEvaluatedKey" not in page:
            return {"cancelled": cancelled}
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
