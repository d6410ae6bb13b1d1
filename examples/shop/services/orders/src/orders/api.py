"""POST /orders places an order and publishes OrderPlaced; GET /orders/{order_id} reads one."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
from shop_core import Money, error, json_response, parse_money, setting
from shop_events import OrderPlaced, to_sns

_dynamodb = boto3.resource("dynamodb")
_sns = boto3.client("sns")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    method = event.get("httpMethod", "GET")
    if method == "POST":
        return place_order(event.get("body") or "{}")
    order_id = (event.get("pathParameters") or {}).get("order_id", "")
    return get_order(order_id)


def place_order(body: str) -> dict[str, Any]:
    try:
        request = json.loads(body)
        lines = request["lines"]
        customer = str(request["customer"])
        total = Money(0, request.get("currency", "EUR"))
        for line in lines:
            total = total + parse_money(line["price"], total.currency).times(int(line["quantity"]))
    except (KeyError, TypeError, ValueError) as exc:
        return error(400, f"invalid order: {exc}")
    order_id = uuid.uuid4().hex
    table = _dynamodb.Table(setting("TABLE_NAME"))
    table.put_item(Item={"order_id": order_id, "customer": customer, "status": "placed",
                         "total_cents": total.cents, "currency": total.currency,
                         "placed_at": int(time.time()), "lines": json.dumps(lines)})
    event = OrderPlaced(order_id=order_id, customer=customer, total=total.to_json())
    _sns.publish(TopicArn=setting("TOPIC_ARN"), **to_sns(event))
    return json_response(201, {"order_id": order_id, "total": total.to_json()})


def get_order(order_id: str) -> dict[str, Any]:
    item = _dynamodb.Table(setting("TABLE_NAME")).get_item(Key={"order_id": order_id}).get("Item")
    if item is None:
        return error(404, f"no order {order_id}")
    total = Money(int(item["total_cents"]), str(item["currency"]))
    return json_response(200, {"order_id": order_id, "status": item["status"],
                               "customer": item["customer"], "total": total.to_json()})
