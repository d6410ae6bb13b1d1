"""``mila logs --function``: a Lambda function's CloudWatch logs (``FilterLogEvents``).

The function is a logical id of the service's stack (resolved with
``DescribeStackResource``) or, failing that, a function name. Its log group is
``/aws/lambda/<function name>``. ``--follow`` polls every :data:`POLL_SECONDS`, printing each
event once (events of the same millisecond are told apart by their id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from mila.errors import MilaError
from mila.model import Record

POLL_SECONDS = 1.0


def function_name(cfn: Any, stack: str | None, function: str) -> str:
    from botocore.exceptions import ClientError

    if stack:
        try:
            found = cfn.describe_stack_resource(StackName=stack, LogicalResourceId=function)
            return str(found["StackResourceDetail"]["PhysicalResourceId"])
        except ClientError:
            pass  # not a logical id of the stack (or no stack): a function name
    return function


def print_events(record: Record, function: str, since_ms: int, follow: bool,
                 write: Callable[[str], None]) -> None:
    from botocore.exceptions import ClientError

    from mila_aws.session import client

    name = function_name(client("cloudformation", record.region), record.stack_name, function)
    logs = client("logs", record.region)
    group = f"/aws/lambda/{name}"
    seen: set[str] = set()
    start = since_ms
    while True:
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=group, startTime=start)
            events = [e for page in pages for e in page.get("events", [])]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise MilaError(f"cannot read {group} in {record.region}: {exc}") from None
            if not follow:
                raise MilaError(f"no log group {group} in {record.region}",
                                hint="the function has not run yet, or NAME is not one of the "
                                     "stack's functions") from None
            events = []
        for event in sorted(events, key=lambda e: (e["timestamp"], e.get("eventId", ""))):
            key = event.get("eventId") or f"{event['timestamp']}:{event['message']}"
            if key in seen:
                continue
            seen.add(key)
            start = max(start, int(event["timestamp"]))
            when = datetime.fromtimestamp(event["timestamp"] / 1000, timezone.utc)
            write(f"{when:%H:%M:%S} {event['message'].rstrip()}")
        if not follow:
            return
        time.sleep(POLL_SECONDS)
