"""Per-resource stack events, and which resource an operation failed on.

**AWS**: ``DescribeStackEvents`` lists, newest first, an event for every status change of every
resource — ``CREATE_IN_PROGRESS`` / ``CREATE_COMPLETE`` (with the physical id), ``UPDATE_*``,
``DELETE_*`` and ``*_FAILED`` with the reason — between the stack's own events. Deployers show
them as progress and quote the ``*_FAILED`` reason when a deploy fails.

**plain moto**: stack-level events only, so a failure has no resource and no reason.

**here**: moto's resource functions (``parse_and_create_resource``, ``parse_and_update_resource``,
``ResourceMap._delete_resource``) are wrapped to record events on the stack an operation runs
on (:func:`operating_on`), and to turn an exception into :class:`ResourceFailed`, naming the
resource, for :mod:`mila_sandbox.cfn_failures` to report and roll back.
``DescribeStackResource(s)`` report each resource's own latest status (moto: the stack's).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

_stack: contextvars.ContextVar[Any] = contextvars.ContextVar("mila_sandbox_stack", default=None)


class ResourceFailed(Exception):
    """A resource could not be created, updated or deleted."""

    def __init__(self, logical_id: str, resource_type: str, action: str, reason: str) -> None:
        super().__init__(f"{logical_id} ({resource_type}): {action} failed: {reason}")
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.action = action
        self.reason = reason


@contextlib.contextmanager
def operating_on(stack: Any) -> Iterator[None]:
    """Record the resource events of this block on ``stack``."""
    token = _stack.set(stack)
    try:
        yield
    finally:
        _stack.reset(token)


def current_stack() -> Any:
    return _stack.get()


def reason_of(exc: BaseException) -> str:
    """The message AWS would show for ``exc`` raised by a resource handler."""
    if isinstance(exc, ResourceFailed):
        return exc.reason
    message = getattr(exc, "message", None) or getattr(exc, "description", None) or str(exc)
    code = getattr(exc, "code", None) or getattr(exc, "error_type", None)
    if isinstance(exc, KeyError):
        message = f"missing required property {exc}"
    text = f"{message} (Service: {code})" if isinstance(code, str) and code else message
    return f'Resource handler returned message: "{text}"'


def stack_event(stack: Any, status: str, reason: str | None = None) -> None:
    """A stack-level event (moto's own helper, which also notifies the stack's SNS topics)."""
    stack._add_stack_event(status, resource_status_reason=reason)


def resource_event(stack: Any, logical_id: str, resource_type: str, status: str,
                   physical_id: str | None = None, reason: str | None = None) -> None:
    from moto.cloudformation.models import Event

    event = Event(stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
                  physical_resource_id=physical_id or "", resource_type=resource_type,
                  resource_status=status, resource_status_reason=reason,
                  resource_properties=None)
    stack.events.append(event)


def _last_status(stack: Any, logical_id: str) -> str | None:
    for event in reversed(stack.events):
        if event.logical_resource_id == logical_id:
            return str(event.resource_status)
    return None


def physical_id_of(resource: Any) -> str:
    if resource is None or isinstance(resource, (str, int, float, list, dict)):
        return ""
    try:
        return str(getattr(resource, "physical_resource_id", "") or "")
    except Exception:  # some models compute it from attributes they may lack
        return ""


def install() -> None:
    _install_resource_events()
    _install_resource_status()


def _with_events(operation: str, original: Any, logical_id: str, resource_json: dict[str, Any],
                 resources_map: Any, account_id: str, region_name: str) -> Any:
    """Run moto's create or update of one resource between its IN_PROGRESS and COMPLETE
    events; a failure becomes :class:`ResourceFailed` naming the resource."""
    stack = current_stack()
    condition = resource_json.get("Condition") if operation == "CREATE" else None
    if stack is None or (condition and not resources_map.lazy_condition_map[condition]):
        return original(logical_id, resource_json, resources_map, account_id, region_name)
    resource_type = str(resource_json.get("Type"))
    if _last_status(stack, logical_id) != f"{operation}_IN_PROGRESS":
        resource_event(stack, logical_id, resource_type, f"{operation}_IN_PROGRESS")
    try:
        resource = original(logical_id, resource_json, resources_map, account_id, region_name)
    except ResourceFailed:
        raise
    except Exception as exc:
        raise ResourceFailed(logical_id, resource_type, operation, reason_of(exc)) from exc
    resource_event(stack, logical_id, resource_type, f"{operation}_COMPLETE",
                   physical_id_of(resource))
    return resource


def _install_resource_events() -> None:
    """Every resource created, updated or deleted inside a stack operation gets its events."""
    from moto.cloudformation import parsing

    original_create = parsing.parse_and_create_resource
    original_update = parsing.parse_and_update_resource
    original_delete = parsing.ResourceMap._delete_resource

    def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str, region_name: str) -> Any:
        return _with_events("CREATE", original_create, logical_id, resource_json, resources_map,
                            account_id, region_name)

    def parse_and_update_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str, region_name: str) -> Any:
        return _with_events("UPDATE", original_update, logical_id, resource_json, resources_map,
                            account_id, region_name)

    def _delete_resource(self: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        stack = current_stack()
        if stack is None:
            return original_delete(self, parsed_resource, resource_json)
        logical_id = str(getattr(parsed_resource, "logical_resource_id", "") or "")
        resource_type = str(resource_json.get("Type"))
        physical_id = physical_id_of(parsed_resource)
        if _last_status(stack, logical_id) != "DELETE_IN_PROGRESS":
            resource_event(stack, logical_id, resource_type, "DELETE_IN_PROGRESS", physical_id)
        original_delete(self, parsed_resource, resource_json)
        resource_event(stack, logical_id, resource_type, "DELETE_COMPLETE", physical_id)

    parsing.parse_and_create_resource = parse_and_create_resource
    parsing.parse_and_update_resource = parse_and_update_resource
    parsing.ResourceMap._delete_resource = _delete_resource


def _install_resource_status() -> None:
    """A stack resource as described carries its own last status (moto reports the stack's
    status as every resource's)."""
    from moto.cloudformation import responses

    original_dto_init = responses.StackResourceDTO.__init__

    def dto_init(self: Any, stack: Any, resource: Any) -> None:
        original_dto_init(self, stack, resource)
        last = _last_status(stack, str(self.logical_resource_id or ""))
        if last is not None:
            self.resource_status = last

    responses.StackResourceDTO.__init__ = dto_init
