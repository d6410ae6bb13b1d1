"""Drain the events queue: one customer message per OrderPlaced/PaymentCaptured event.

A real shop sends the message through its email provider; this one logs it. Records that fail
are reported back (``batchItemFailures``) so SQS retries only them, then dead-letters them.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from shop_events import OrderPlaced, PaymentCaptured, from_sqs_record

log = logging.getLogger()
log.setLevel(logging.INFO)


def message_for(event: OrderPlaced | PaymentCaptured) -> str:
    if isinstance(event, OrderPlaced):
        total = event.total
        return f"Thank you, {event.customer}: order {event.order_id} ({total['amount']} " \
               f"{total['currency']}) is placed."
    return f"Payment {event.reference} for order {event.order_id} is captured."


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    failures = []
    for record in event.get("Records", []):
        try:
            text = message_for(from_sqs_record(record))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("cannot read message %s: %s", record.get("messageId"), exc)
            failures.append({"itemIdentifier": record.get("messageId")})
            continue
        log.info(json.dumps({"from": os.environ.get("SENDER"), "text": text}))
    return {"batchItemFailures": failures}
