"""A failure inside the sandbox reaches the client as one AWS-shaped error naming its cause.

**AWS**: an internal failure is answered in the service's own protocol (``InternalFailure``,
HTTP 500), which every SDK reads as an ordinary service error.

**plain moto**: a Python exception in a handler becomes Flask's HTML error page (HTTP 500):
botocore cannot parse it (``ResponseParserError``) or shows a bare "500"; the cause is only in
the server's log.

**here**: the exception is logged with its traceback and answered as ``InternalFailure`` in
the service's protocol, with one line naming the operation, the stack and resource when there
is one (``StackName`` of the request; the resource moto was working on), and the cause. It is
answered with HTTP 400, not AWS's 500: a failure of the sandbox is deterministic, and SDKs
retry a 500 with back-off (mila's clients up to 10 times, about a minute) before showing it.
"""

from __future__ import annotations

import logging
import types
import warnings
from typing import Any

log = logging.getLogger("mila.sandbox")


def _resource(traceback: types.TracebackType | None) -> str | None:
    """The resource moto was handling when it failed: the innermost frame with a logical id."""
    found = None
    while traceback is not None:
        local = traceback.tb_frame.f_locals
        logical_id = local.get("logical_id")
        if isinstance(logical_id, str):
            resource_json = local.get("resource_json")
            kind = resource_json.get("Type") if isinstance(resource_json, dict) else None
            found = f"{logical_id} ({kind})" if kind else logical_id
        traceback = traceback.tb_next
    return found


def describe(response: Any, exc: BaseException) -> str:
    """``sandbox: <Service> <Action> failed for stack S, resource R: <cause>``."""
    service = getattr(response, "service_name", None) or "the service"
    try:
        action = response._get_action()
        stack = response._get_param("StackName") if service == "cloudformation" else None
    except Exception:  # the request itself could not be read
        action, stack = "request", None
    where = [f"stack {stack}"] if stack else []
    resource = _resource(exc.__traceback__)
    if resource:
        where.append(f"resource {resource}")
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"sandbox: {service} {action} failed" + (f" for {', '.join(where)}" if where else "")
            + f": {type(exc).__name__}" + (f": {cause}" if cause else "")
            + " (a gap in the sandbox's emulation of AWS; its log has the traceback)")


def install() -> None:
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult, BaseResponse
    from werkzeug.exceptions import HTTPException

    original = BaseResponse.call_action

    class InternalFailure(ServiceException):
        code = "InternalFailure"

    def call_action(self: Any) -> Any:
        try:
            return original(self)
        except (HTTPException, ServiceException):
            raise
        except Exception as exc:
            message = describe(self, exc)
            log.error("%s", message, exc_info=exc)
            with warnings.catch_warnings():  # "matches no error shape": AWS's models omit it
                warnings.simplefilter("ignore", UserWarning)
                _, headers, body = self.serialized(ActionResult(InternalFailure(message)))
            return 400, headers, body

    BaseResponse.call_action = call_action
