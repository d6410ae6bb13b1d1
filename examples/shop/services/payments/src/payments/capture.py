"""Capture a payment: ``{"order_id": "...", "amount": "12.30", "currency": "EUR"}``.

A real shop calls its payment provider here; this one records a reference and publishes
PaymentCaptured on the shared topic (the JSON is the shop_events schema, kept inline so this
function depends on shop-core only).

Configured by the environment files (``envs/.env``, ``services/payments/envs/.env*``):
``ORDERS_TABLE``, ``CAPTURE_LIMIT_CENTS``, ``PROVIDER_URL`` (an SSM parameter) and
``PROVIDER_API_KEY`` (a key of a Secrets Manager secret), resolved by mila in each region.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
from shop_core import parse_money, setting

_sns = boto3.client("sns")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    order_id = str(event["order_id"])
    amount = parse_money(event["amount"], event.get("currency", "EUR"))
    if amount.cents > int(setting("CAPTURE_LIMIT_CENTS", "100000")):
        return {"order_id": order_id, "error": "above the capture limit",
                "contact": setting("SUPPORT_EMAIL", "")}
    reference = "pay_" + hashlib.sha256(f"{order_id}:{amount.cents}".encode()).hexdigest()[:16]
    _sns.publish(TopicArn=setting("TOPIC_ARN"),
                 Message=json.dumps({"order_id": order_id, "reference": reference, "version": 1}),
                 MessageAttributes={"type": {"DataType": "String",
                                             "StringValue": "PaymentCaptured"}})
    return {"order_id": order_id, "reference": reference, "amount": amount.to_json(),
            "provider": setting("PROVIDER_URL", ""), "table": setting("ORDERS_TABLE", "")}
