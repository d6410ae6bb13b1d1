"""Lambda invocations without Docker: a clear "not executed in the sandbox" result.

AWS runs the function's code. moto runs it in a Docker container, and without Docker the
invocation crashes (HTTP 500). The sandbox does not execute code: an invocation — direct
(``Invoke``, ``InvokeAsync``) or from another service (SNS, SQS, S3 notifications…) — succeeds
with this JSON payload, and the same message in the tail log::

    {"milaSandbox": "not executed", "functionName": "...", "message": "...", "event": {...}}

so a deploy that smoke-tests its function sees an honest answer instead of a crash or a
canned "happy path" string that looks like the function's own reply.
"""

from __future__ import annotations

import json
from typing import Any

NOT_EXECUTED = "not executed"


def sandbox_invoke_result(function_name: str, event: Any) -> dict[str, Any]:
    return {"milaSandbox": NOT_EXECUTED, "functionName": function_name,
            "message": f"the mila sandbox does not run Lambda code: {function_name} exists and "
                       "accepted the invocation, but its handler was not executed",
            "event": event}


def install() -> None:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        self.logs_backend.ensure_log_group(self.logs_group_name)
        result = sandbox_invoke_result(self.function_name, event if event is not None else {})
        return json.dumps(result), False, f"mila sandbox: {result['message']}\n"

    LambdaFunction._invoke_lambda = _invoke_lambda
