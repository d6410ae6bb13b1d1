"""Change sets as AWS handles them: scoped to their stack, executed once, from a valid state.

**AWS**:

* A change set belongs to one stack. Addressed by name, it is looked up within ``StackName``
  (required then); addressed by ARN, it is that change set. Two stacks may each have a change
  set called ``deploy``.
* ``CreateChangeSet`` with ``ChangeSetType=CREATE`` for a stack that already exists (anything
  but a stack still ``REVIEW_IN_PROGRESS``) fails: ``ValidationError: Stack [name] already
  exists and cannot be created again with the changeSet [cs]``. An UPDATE change set needs an
  existing stack in a settled state.
* Only a change set whose ``ExecutionStatus`` is ``AVAILABLE`` can be executed: a ``FAILED``
  one (such as the empty change set, "The submitted information didn't contain changes…") or
  one already executed is refused with ``InvalidChangeSetStatus``. Executing a change set
  deletes the stack's other change sets.
* ``Fn::ImportValue`` resolves against the region's exports when the change set executes,
  for a CREATE change set as for ``CreateStack``.
* ``GetTemplate`` answers a stack's template or, with ``ChangeSetName``, a change set's (found
  as above), as sent (``TemplateStage=Original``) or processed.
* Executing runs the operation with per-resource events and rollback
  (:mod:`mila_sandbox.cfn_failures`), then reports outputs and exports
  (:mod:`mila_sandbox.cfn_outputs`).

**plain moto**: looks change sets up by name across all stacks (executing another stack's
``deploy``), executes FAILED change sets, creates a second stack of the same name for a CREATE
change set, never evaluates outputs after executing, and builds a CREATE change set's stack
without the region's exports (every ``Fn::ImportValue`` fails: "No export named …").
"""

from __future__ import annotations

from typing import Any

from mila_sandbox import cfn_failures
from mila_sandbox.cfn_stacks import (
    check_template_loads,
    delete_stack,
    live_stack,
    on_failure,
    original_template,
    prepare,
    request_parameters,
    require_updatable,
    template_body,
    validation_error,
)


def _errors() -> tuple[type[Exception], type[Exception]]:
    from moto.cloudformation.exceptions import CloudFormationError

    class ChangeSetNotFound(CloudFormationError):
        code = "ChangeSetNotFound"

    class InvalidChangeSetStatus(CloudFormationError):
        code = "InvalidChangeSetStatus"

    return ChangeSetNotFound, InvalidChangeSetStatus


def find_change_set(backend: Any, name_or_arn: str, stack_name: str | None) -> Any:
    """The change set ``name_or_arn`` — by ARN, or by name within ``stack_name``."""
    not_found, _ = _errors()
    if name_or_arn.startswith("arn:"):
        change_set = backend.change_sets.get(name_or_arn)
        if change_set is None:
            raise not_found(f"ChangeSet [{name_or_arn}] does not exist")
        return change_set
    if not stack_name:
        raise validation_error("StackName must be specified if ChangeSetName is not specified "
                               "as an ARN.")
    stack = live_stack(backend, stack_name)
    if stack is None:
        raise validation_error(f"Stack [{stack_name}] does not exist")
    for change_set in backend.change_sets.values():
        if change_set.change_set_name == name_or_arn and change_set.stack_id == stack.stack_id:
            return change_set
    raise not_found(f"ChangeSet [{name_or_arn}] does not exist")


def create_change_set(self: Any) -> Any:
    from moto.cloudformation.models import ChangeSet
    from moto.cloudformation.utils import generate_changeset_id, validate_create_change_set
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    stack_name = self._get_param("StackName")
    name = self._get_param("ChangeSetName")
    kind = self._get_param("ChangeSetType") or "UPDATE"
    validate_create_change_set(name)
    stack = _target_stack(backend, stack_name, name, kind)

    original = template_body(self, previous=stack if kind == "UPDATE" else None)
    parameters = request_parameters(self, stack if kind == "UPDATE" else None)
    real_name = stack.name if stack is not None else stack_name
    template = prepare(self, real_name, original, parameters, change_set=True)
    effective = {**(stack.parameters if kind == "UPDATE" and stack else {}), **parameters}
    check_template_loads(backend, real_name, template, effective)

    notification_arns = self._get_param("NotificationARNs", [])
    tags = {t["Key"]: t["Value"] for t in self._get_param("Tags", [])}
    role_arn = self._get_param("RoleARN")
    if stack is None:
        stack = _review_stack(backend, stack_name, parameters, notification_arns, tags, role_arn)

    change_set = ChangeSet(change_set_type=kind,
                           change_set_id=generate_changeset_id(name, backend.region_name,
                                                               backend.account_id),
                           change_set_name=name, stack=stack, template=template,
                           parameters=effective, description=self._get_param("Description"),
                           notification_arns=notification_arns, tags=tags, role_arn=role_arn)
    change_set._mila_original_template = original
    _set_status(change_set, empty=kind == "UPDATE" and stack.has_template(template)
                and stack.parameters == effective)
    backend.change_sets[change_set.change_set_id] = change_set
    return ActionResult({"Id": change_set.change_set_id, "StackId": stack.stack_id})


def _target_stack(backend: Any, stack_name: str, name: str, kind: str) -> Any:
    """The live stack a ``kind`` (CREATE or UPDATE) change set named ``name`` may target
    (``None`` for a stack to create), refused as CloudFormation refuses it."""
    from moto.cloudformation.exceptions import AlreadyExistsException

    stack = live_stack(backend, stack_name)
    if kind == "CREATE":
        if stack is not None and stack.status != "REVIEW_IN_PROGRESS":
            raise validation_error(f"Stack [{stack_name}] already exists and cannot be created "
                                   f"again with the changeSet [{name}].")
    elif kind == "UPDATE":
        if stack is None:
            raise validation_error(f"Stack [{stack_name}] does not exist")
        require_updatable(stack)
    else:
        raise validation_error(f"ChangeSetType {kind} is not supported by the sandbox")
    if stack is not None and any(cs.change_set_name == name and cs.stack_id == stack.stack_id
                                 for cs in backend.change_sets.values()):
        raise AlreadyExistsException(f"ChangeSet {name} already exists")
    return stack


def _review_stack(backend: Any, stack_name: str, parameters: dict[str, Any],
                  notification_arns: list[str], tags: dict[str, str], role_arn: str | None) -> Any:
    """The empty ``REVIEW_IN_PROGRESS`` stack a CREATE change set makes, as on AWS."""
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import generate_stack_id

    stack = Stack(stack_id=generate_stack_id(stack_name, backend.region_name, backend.account_id),
                  name=stack_name, template={}, parameters=parameters,
                  account_id=backend.account_id, region_name=backend.region_name,
                  notification_arns=notification_arns, tags=tags, role_arn=role_arn)
    backend.stacks[stack.stack_id] = stack
    stack.status = "REVIEW_IN_PROGRESS"
    stack._add_stack_event("REVIEW_IN_PROGRESS", resource_status_reason="User Initiated")
    return stack


def _set_status(change_set: Any, *, empty: bool) -> None:
    """Ready to execute, or FAILED as AWS fails an UPDATE that changes nothing."""
    if empty:
        change_set.status = "FAILED"
        change_set.execution_status = "UNAVAILABLE"
        change_set.status_reason = ("The submitted information didn't contain changes. Submit "
                                    "different information to create a change set.")
    else:
        change_set.status = "CREATE_COMPLETE"
        change_set.execution_status = "AVAILABLE"


def describe_change_set(self: Any) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult(find_change_set(self.cloudformation_backend,
                                        self._get_param("ChangeSetName"),
                                        self._get_param("StackName")))


def delete_change_set(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    backend = self.cloudformation_backend
    change_set = find_change_set(backend, self._get_param("ChangeSetName"),
                                 self._get_param("StackName"))
    del backend.change_sets[change_set.change_set_id]
    return EmptyResult()


def list_change_sets(self: Any) -> Any:
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    stack = live_stack(backend, self._get_param("StackName") or "")
    if stack is None:
        raise validation_error(f"Stack [{self._get_param('StackName')}] does not exist")
    return ActionResult({"Summaries": [cs for cs in backend.change_sets.values()
                                       if cs.stack_id == stack.stack_id]})


def execute_change_set(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    _, invalid_status = _errors()
    backend = self.cloudformation_backend
    change_set = find_change_set(backend, self._get_param("ChangeSetName"),
                                 self._get_param("StackName"))
    if change_set.execution_status != "AVAILABLE":
        shown = change_set.status if change_set.status == "FAILED" else change_set.execution_status
        raise invalid_status(f"ChangeSet [{change_set.change_set_id}] cannot be executed in its "
                             f"current status of [{shown}]")
    stack = backend.stacks[change_set.stack_id]
    change_set.execution_status = "EXECUTE_IN_PROGRESS"
    if change_set.change_set_type == "CREATE":
        def create() -> None:
            stack.template = change_set.template
            stack._parse_template()
            stack.description = stack.template_dict.get("Description")
            stack.parameters = change_set.parameters
            stack.cross_stack_resources = backend.exports  # Fn::ImportValue, as CreateStack
            stack.resource_map = stack._create_resource_map()
            stack.resource_map.create(stack.template_dict)

        stack._mila_original_template = change_set._mila_original_template
        if cfn_failures.run_create(backend, stack, create, on_failure=on_failure(self)):
            delete_stack(backend, stack)  # OnFailure=DELETE
        succeeded = stack.status == "CREATE_COMPLETE"
    else:
        def update() -> None:
            stack.resource_map.cross_stack_resources = backend.exports  # exports made since
            stack.resource_map.update(change_set.template_dict, change_set.parameters or None)
            stack.template = change_set.template
            if change_set.parameters:
                stack.parameters = change_set.parameters

        succeeded = cfn_failures.run_update(backend, stack, update,
                                            rollback=on_failure(self) != "DO_NOTHING")
        if succeeded:
            stack._mila_original_template = change_set._mila_original_template
    change_set.execution_status = "EXECUTE_COMPLETE" if succeeded else "EXECUTE_FAILED"
    for other_id, other in list(backend.change_sets.items()):
        if other.stack_id == stack.stack_id and other is not change_set:
            del backend.change_sets[other_id]
    return EmptyResult()


def get_template(self: Any) -> Any:
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    stage = self._get_param("TemplateStage") or "Original"
    change_set_name = self._get_param("ChangeSetName")
    if change_set_name:
        source = find_change_set(backend, change_set_name, self._get_param("StackName"))
    else:
        source = backend.get_stack(self._get_param("StackName"))
    body = original_template(source) if stage == "Original" else source.template
    return ActionResult({"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]})


def install() -> None:
    from moto.cloudformation.responses import CloudFormationResponse

    CloudFormationResponse.create_change_set = create_change_set
    CloudFormationResponse.describe_change_set = describe_change_set
    CloudFormationResponse.delete_change_set = delete_change_set
    CloudFormationResponse.list_change_sets = list_change_sets
    CloudFormationResponse.execute_change_set = execute_change_set
    CloudFormationResponse.get_template = get_template
