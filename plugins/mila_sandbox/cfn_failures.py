"""A resource that fails rolls its stack back, as on AWS.

**AWS**: when a resource fails during a create, the stack records ``CREATE_FAILED`` for it with
the reason, goes ``ROLLBACK_IN_PROGRESS``, deletes what it had created and ends
``ROLLBACK_COMPLETE`` (it can then only be deleted). When a resource fails during an update
(``UpdateStack`` or an UPDATE change set) it records ``UPDATE_FAILED``, goes
``UPDATE_ROLLBACK_IN_PROGRESS``, returns every resource to the previous template and ends
``UPDATE_ROLLBACK_COMPLETE`` with the previous outputs. The API call that started the
operation succeeded; the failure is seen in the stack's status and events. With rollback
disabled (``DisableRollback``, or ``OnFailure=DO_NOTHING`` on ``CreateStack``) the stack stops
at ``CREATE_FAILED`` / ``UPDATE_FAILED`` keeping what was done, and can be updated again;
``OnFailure=DELETE`` deletes the stack after the rollback.

**plain moto**: the exception escapes as HTTP 500 and the stack stays ``CREATE_IN_PROGRESS``
(or half-updated) for ever — a deployer polling it waits until its timeout.

**here**: :func:`run_create` and :func:`run_update` run an operation's resource work inside
:func:`mila_sandbox.cfn_events.operating_on` and turn a failure into the AWS sequence above.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from typing import Any

from mila_sandbox import cfn_outputs
from mila_sandbox.cfn_events import (
    ResourceFailed,
    operating_on,
    reason_of,
    resource_event,
    stack_event,
)

log = logging.getLogger("mila.sandbox")


def _failure(exc: Exception, stack: Any, action: str) -> ResourceFailed:
    if isinstance(exc, ResourceFailed):
        return exc
    log.warning("sandbox: %s of stack %s failed outside a resource", action, stack.name,
                exc_info=exc)
    return ResourceFailed(stack.name, "AWS::CloudFormation::Stack", action, reason_of(exc))


def run_create(backend: Any, stack: Any, work: Callable[[], None],
               on_failure: str = "ROLLBACK") -> bool:
    """Create ``stack``'s resources with ``work()``; on failure roll back to
    ``ROLLBACK_COMPLETE`` (``on_failure``: ``ROLLBACK``, ``DO_NOTHING`` or ``DELETE``). Ends
    ``CREATE_COMPLETE`` with outputs and exports otherwise. Returns ``True`` when the create
    failed, rolled back and ``on_failure`` is ``DELETE``: the caller then deletes the stack
    (:func:`mila_sandbox.cfn_stacks.delete_stack`, which owns a stack's deletion)."""
    stack.status = "CREATE_IN_PROGRESS"
    stack_event(stack, "CREATE_IN_PROGRESS", "User Initiated")
    with operating_on(stack):
        try:
            work()
            cfn_outputs.settle(backend, stack)
        except Exception as exc:
            failed = _failure(exc, stack, "CREATE")
            if failed.logical_id != stack.name:
                resource_event(stack, failed.logical_id, failed.resource_type, "CREATE_FAILED",
                               reason=failed.reason)
            cfn_outputs.clear(backend, stack)
            if on_failure == "DO_NOTHING":
                stack.status = "CREATE_FAILED"
                stack_event(stack, "CREATE_FAILED", "The following resource(s) failed to "
                            f"create: [{failed.logical_id}]. Rollback disabled.")
                return False
            stack.status = "ROLLBACK_IN_PROGRESS"
            stack_event(stack, "ROLLBACK_IN_PROGRESS",
                        f"The following resource(s) failed to create: [{failed.logical_id}]. "
                        "Rollback requested by user." if failed.logical_id != stack.name
                        else failed.reason)
            with contextlib.suppress(Exception):  # best effort, as moto may lack a delete
                stack.resource_map.delete()
            stack.status = "ROLLBACK_COMPLETE"
            stack_event(stack, "ROLLBACK_COMPLETE")
            return on_failure == "DELETE"
    stack.status = "CREATE_COMPLETE"
    stack_event(stack, "CREATE_COMPLETE")
    return False


def run_update(backend: Any, stack: Any, work: Callable[[], None],
               rollback: bool = True) -> bool:
    """Update ``stack`` with ``work()`` (which changes its template and resources); on failure
    return every resource to the previous template and end ``UPDATE_ROLLBACK_COMPLETE`` (or
    stop at ``UPDATE_FAILED`` without ``rollback``). Returns whether the update succeeded."""
    previous_template = stack.template
    previous_dict = stack.template_dict
    previous_parameters = dict(stack.parameters or {})
    stack.status = "UPDATE_IN_PROGRESS"
    stack_event(stack, "UPDATE_IN_PROGRESS", "User Initiated")
    with operating_on(stack):
        try:
            work()
            cfn_outputs.settle(backend, stack)
        except Exception as exc:
            failed = _failure(exc, stack, "UPDATE")
            if failed.logical_id != stack.name:
                resource_event(stack, failed.logical_id, failed.resource_type,
                               f"{failed.action if failed.action != 'EXPORT' else 'UPDATE'}_FAILED",
                               reason=failed.reason)
            if not rollback:
                stack.status = "UPDATE_FAILED"
                stack_event(stack, "UPDATE_FAILED", "The following resource(s) failed to "
                            f"update: [{failed.logical_id}]. Rollback disabled.")
                return False
            stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
            stack_event(stack, "UPDATE_ROLLBACK_IN_PROGRESS",
                        f"The following resource(s) failed to update: [{failed.logical_id}]. "
                        if failed.logical_id != stack.name else failed.reason)
            try:
                with warnings.catch_warnings():  # "never created": the resource that failed
                    warnings.simplefilter("ignore", UserWarning)
                    stack.resource_map.update(previous_dict, previous_parameters)
            except Exception:  # what moto cannot restore stays as it is
                log.warning("sandbox: rollback of stack %s was incomplete", stack.name,
                            exc_info=True)
            stack.template = previous_template
            stack.parameters = previous_parameters
            with contextlib.suppress(Exception):
                cfn_outputs.settle(backend, stack)
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            stack_event(stack, "UPDATE_ROLLBACK_COMPLETE")
            return False
    stack.status = "UPDATE_COMPLETE"
    stack_event(stack, "UPDATE_COMPLETE")
    return True
