"""API Gateway (REST, proxy integration) responses."""

from __future__ import annotations

import json
from typing import Any


def json_response(status: int, body: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, separators=(",", ":"), sort_keys=True)}


def error(status: int, message: str) -> dict[str, Any]:
    return json_response(status, {"error": message})
