"""Events published on the shared topic. One schema, versioned, so producer and consumers agree.

An event travels as an SNS message (JSON) with a ``type`` message attribute; SQS queues
subscribed to the topic receive the SNS envelope, which :func:`from_sqs_record` unwraps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    customer: str
    total: dict[str, Any]  # {"amount": "12.30", "currency": "EUR"}
    version: int = SCHEMA_VERSION

    type = "OrderPlaced"


@dataclass(frozen=True)
class PaymentCaptured:
    order_id: str
    reference: str
    version: int = SCHEMA_VERSION

    type = "PaymentCaptured"


EVENT_TYPES = {cls.type: cls for cls in (OrderPlaced, PaymentCaptured)}


def to_sns(event: OrderPlaced | PaymentCaptured) -> dict[str, Any]:
    """Keyword arguments for ``sns.publish`` (without ``TopicArn``)."""
    return {"Message": json.dumps(asdict(event), sort_keys=True),
            "MessageAttributes": {"type": {"DataType": "String", "StringValue": event.type}}}


def from_message(event_type: str, message: str) -> OrderPlaced | PaymentCaptured:
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise ValueError(f"unknown event type {event_type!r}")
    return cls(**json.loads(message))


def from_sqs_record(record: dict[str, Any]) -> OrderPlaced | PaymentCaptured:
    """An SQS record carrying an SNS notification (raw delivery off) → the event."""
    envelope = json.loads(record["body"])
    event_type = envelope.get("MessageAttributes", {}).get("type", {}).get("Value", "")
    return from_message(event_type, envelope["Message"])
