"""Stack operations as AWS runs them: create, update, delete (``GetTemplate``, of a stack or
a change set, is :mod:`mila_sandbox.cfn_changesets`'s, which builds on this module).

**AWS**: ``CreateStack`` refuses a name a live stack already has (including one in
``REVIEW_IN_PROGRESS`` or ``ROLLBACK_COMPLETE``); ``UpdateStack`` refuses a stack that is not in
a settled ``*_COMPLETE`` state; every operation records per-resource events and rolls back on
failure (:mod:`mila_sandbox.cfn_failures`). A deleted stack stays deleted: described by its id
it is ``DELETE_COMPLETE`` with no outputs and no resources; by name it no longer exists.
``UsePreviousValue`` for a parameter that took its default reuses that default (what every
second ``aws cloudformation deploy`` / ``sam deploy`` sends).

**plain moto**: describing or listing the resources of a deleted stack evaluates them again,
re-creating the resources its deletion removed (a deleted bucket comes back).

**here**: the stack operations of ``CloudFormationResponse`` are replaced by the functions
below, which run moto's resource work through the fidelity modules; ``Stack.stack_resources``
lists only resources that exist, never evaluating (and so creating) one. A nested stack's
SAM template is transformed (plain moto leaves its ``AWS::Serverless::*`` resources to fail),
and a nested stack that failed fails its resource in the parent.
"""

from __future__ import annotations

import json
from typing import Any

from mila_sandbox import (
    cfn_capabilities,
    cfn_failures,
    cfn_outputs,
    cfn_transforms,
    cfn_validation,
    sam_transform,
)
from mila_sandbox.cfn_events import operating_on, stack_event

#: states a stack can be updated from (the *_FAILED ones: after a failure with rollback disabled)
SETTLED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
           "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED"}


def on_failure(response: Any) -> str:
    """``OnFailure`` of CreateStack, or ``DO_NOTHING`` when ``DisableRollback`` is set."""
    if response._get_bool_param("DisableRollback", False):
        return "DO_NOTHING"
    return str(response._get_param("OnFailure") or "ROLLBACK")


def validation_error(message: str) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    return ValidationError(message=message)


def live_stack(backend: Any, name_or_id: str) -> Any | None:
    """The stack (not deleted) with this name or id, or ``None``."""
    for stack in backend.stacks.values():
        if name_or_id in (stack.name, stack.stack_id):
            return stack
    return None


def require_updatable(stack: Any) -> None:
    if stack.status not in SETTLED:
        raise validation_error(f"Stack:{stack.stack_id} is in {stack.status} state and can not "
                               "be updated.")


def template_body(response: Any, previous: Any | None = None) -> str:
    """The template sent with the request: body, URL, or the stack's previous (original) one."""
    body = response._get_param("TemplateBody")
    url = response._get_param("TemplateURL")
    use_previous = response._get_bool_param("UsePreviousTemplate", False)
    if use_previous and (body or url):
        raise validation_error("You cannot specify both usePreviousTemplate and Template Body/"
                               "Template URL.")
    if use_previous:
        if previous is None:
            raise validation_error("UsePreviousTemplate is only valid for an existing stack")
        return str(original_template(previous))
    if url:
        return str(response._get_stack_from_s3_url(url))
    if not body:
        raise validation_error("Either Template URL or Template Body must be specified.")
    return str(body)


def request_parameters(response: Any, previous: Any | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in response._get_param("Parameters", []) or []:
        key = item["ParameterKey"]
        if item.get("UsePreviousValue") in (True, "true"):
            if item.get("ParameterValue"):
                raise validation_error(f"Invalid input for parameter key {key}. Cannot specify "
                                       "usePreviousValue as true and non empty value for a "
                                       "parameter")
            value = previous_value(previous, key) if previous is not None else None
            if value is None:
                raise validation_error(f"Invalid input for parameter key {key}. Cannot specify "
                                       "usePreviousValue as true for a parameter that was not "
                                       "set before")
            values[key] = value
        else:
            values[key] = item.get("ParameterValue")
    return values


def previous_value(stack: Any, key: str) -> Any:
    """The value ``key`` had in ``stack``: the one it was given, else its declared default
    (AWS keeps the default a parameter took as its value)."""
    if key in (stack.parameters or {}):
        return stack.parameters[key]
    declared = (stack.template_dict.get("Parameters") or {}).get(key)
    if isinstance(declared, dict) and "Default" in declared:
        default = declared["Default"]
        return ",".join(map(str, default)) if isinstance(default, list) else str(default)
    return None


def prepare(response: Any, stack_name: str, original: str, parameters: dict[str, Any], *,
            change_set: bool) -> str:
    """The template to run: ``original`` with the SAM transform applied when it declares it,
    after the capabilities check. Raises what AWS raises for a bad template."""
    from moto.cloudformation.models import Stack

    try:
        template = Stack.parse_template(original)
    except ValueError as exc:
        raise validation_error(f"Template format error: {exc}") from None
    if not isinstance(template, dict):
        raise validation_error("Template format error: the template is not a JSON or YAML object")
    template, included = cfn_transforms.apply(template, parameters, response.current_account,
                                              response.region)
    transformed = sam_transform.declares_transform(template)
    if transformed:
        template = sam_transform.expand(template, parameters, response.region,
                                        response.current_account, stack_name)
    cfn_validation.check_format(template, response.region)
    capabilities = response._get_param("Capabilities", []) or []
    cfn_capabilities.check(template, capabilities, transformed=transformed or included,
                           change_set=change_set)
    return original if not (transformed or included) else json.dumps(template)


def check_template_loads(backend: Any, stack_name: str, template: str,
                         parameters: dict[str, Any]) -> None:
    """Raise the ValidationError AWS answers at request time (missing parameters, bad outputs)."""
    from moto.cloudformation.models import Stack
    from moto.cloudformation.parsing import ResourceMap

    template_dict = Stack.parse_template(template)
    if "Resources" not in template_dict:
        raise validation_error("Template format error: At least one Resources member must be "
                               "defined.")
    ResourceMap("arn:aws:cloudformation:check", stack_name, parameters, {},
                region_name=backend.region_name, account_id=backend.account_id,
                template=template_dict, cross_stack_resources=backend.exports).load()


def original_template(stack: Any) -> Any:
    return getattr(stack, "_mila_original_template", None) or stack.template


def delete_stack(backend: Any, stack: Any) -> None:
    """Delete ``stack``'s resources with events; it moves to the deleted stacks."""
    stack.status = "DELETE_IN_PROGRESS"
    stack_event(stack, "DELETE_IN_PROGRESS", "User Initiated")
    with operating_on(stack):
        try:
            stack.resource_map.delete()
        except Exception as exc:
            from mila_sandbox.cfn_events import reason_of

            stack.status = "DELETE_FAILED"
            stack_event(stack, "DELETE_FAILED", reason_of(exc))
            return
    cfn_outputs.clear(backend, stack)
    stack.status = "DELETE_COMPLETE"
    stack_event(stack, "DELETE_COMPLETE")
    backend.stacks.pop(stack.stack_id, None)
    backend.deleted_stacks[stack.stack_id] = stack
    for change_set_id, change_set in list(backend.change_sets.items()):
        if change_set.stack_id == stack.stack_id:
            del backend.change_sets[change_set_id]


# ----------------------------------------------------------------------------- API actions


def create_stack(self: Any) -> Any:
    from moto.cloudformation.exceptions import AlreadyExistsException
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import generate_stack_id
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    name = self._get_param("StackName")
    if live_stack(backend, name) is not None:
        raise AlreadyExistsException(f"Stack [{name}] already exists")
    original = template_body(self)
    parameters = request_parameters(self, None)
    template = prepare(self, name, original, parameters, change_set=False)
    stack = Stack(stack_id=generate_stack_id(name, backend.region_name, backend.account_id),
                  name=name, template=template, parameters=parameters,
                  account_id=backend.account_id, region_name=backend.region_name,
                  notification_arns=self._get_param("NotificationARNs", []),
                  tags={t["Key"]: t["Value"] for t in self._get_param("Tags", [])},
                  role_arn=self._get_param("RoleARN"), cross_stack_resources=backend.exports,
                  enable_termination_protection=self._get_param("EnableTerminationProtection"),
                  timeout_in_mins=self._get_param("TimeoutInMinutes"),
                  stack_policy_body=self._get_param("StackPolicyBody"))
    stack._mila_original_template = original
    backend.stacks[stack.stack_id] = stack
    if cfn_failures.run_create(backend, stack,
                               lambda: stack.resource_map.create(stack.template_dict),
                               on_failure=on_failure(self)):
        delete_stack(backend, stack)  # OnFailure=DELETE
    return ActionResult({"StackId": stack.stack_id})


def update_stack(self: Any) -> Any:
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    name = self._get_param("StackName")
    stack = live_stack(backend, name)
    if stack is None:
        raise validation_error(f"Stack [{name}] does not exist")
    require_updatable(stack)
    original = template_body(self, previous=stack)
    parameters = {**request_parameters(self, stack)}
    template = prepare(self, stack.name, original, parameters, change_set=False)
    check_template_loads(backend, stack.name, template, parameters)
    if stack.has_template(template) and (not parameters or stack.parameters == parameters):
        raise validation_error("No updates are to be performed.")
    tags = {t["Key"]: t["Value"] for t in self._get_param("Tags", [])} or None

    def work() -> None:
        stack.resource_map.cross_stack_resources = backend.exports  # exports made since
        stack.resource_map.update(stack.parse_template(template), parameters or None)
        stack.template = template
        if parameters:
            stack.parameters = parameters
        if tags is not None:
            stack.tags = tags

    if cfn_failures.run_update(backend, stack, work,
                               rollback=on_failure(self) != "DO_NOTHING"):
        stack._mila_original_template = original
    return ActionResult({"StackId": stack.stack_id})


def delete_stack_action(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    backend = self.cloudformation_backend
    stack = live_stack(backend, self._get_param("StackName"))
    if stack is not None:  # deleting a stack that does not exist succeeds, as on AWS
        delete_stack(backend, stack)
    return EmptyResult()


def backend_create_stack(self: Any, name: str, template: str, parameters: dict[str, Any],
                         notification_arns: list[str] | None = None,
                         tags: dict[str, str] | None = None, role_arn: str | None = None,
                         enable_termination_protection: bool | None = False,
                         timeout_in_mins: int | None = None,
                         stack_policy_body: str | None = None) -> Any:
    """moto's backend entry point (nested stacks, stack sets), with the same lifecycle."""
    from moto.cloudformation.exceptions import AlreadyExistsException
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import generate_stack_id

    if live_stack(self, name) is not None:
        raise AlreadyExistsException(f"Stack [{name}] already exists")
    template = nested_template(self, name, template, parameters)
    stack = Stack(stack_id=generate_stack_id(name, self.region_name, self.account_id),
                  name=name, template=template, parameters=parameters,
                  account_id=self.account_id, region_name=self.region_name,
                  notification_arns=notification_arns, tags=tags, role_arn=role_arn,
                  cross_stack_resources=self.exports,
                  enable_termination_protection=enable_termination_protection,
                  timeout_in_mins=timeout_in_mins, stack_policy_body=stack_policy_body)
    self.stacks[stack.stack_id] = stack
    cfn_failures.run_create(self, stack, lambda: stack.resource_map.create(stack.template_dict))
    if stack.status != "CREATE_COMPLETE":  # the parent's resource fails, as on AWS
        reasons = [e.resource_status_reason for e in stack.events
                   if e.resource_status == "ROLLBACK_IN_PROGRESS" and e.resource_status_reason]
        raise ValueError(f"Embedded stack {stack.stack_id} was not successfully created: "
                         f"{reasons[-1] if reasons else stack.status}")
    return stack


def nested_template(backend: Any, name: str, template: str, parameters: dict[str, Any]) -> str:
    """A nested stack's template, with the SAM transform applied when it declares it (a
    nested ``AWS::Serverless::Application`` is usually a SAM template itself)."""
    from moto.cloudformation.models import Stack

    body = Stack.parse_template(template)
    if not isinstance(body, dict):
        return template
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in parameters.items()}
    body, included = cfn_transforms.apply(body, values, backend.account_id, backend.region_name)
    if sam_transform.declares_transform(body):
        body = sam_transform.expand(body, values, backend.region_name, backend.account_id, name)
    elif not included:
        return template
    return json.dumps(body)


def backend_delete_stack(self: Any, name_or_stack_id: str) -> None:
    stack = live_stack(self, name_or_stack_id)
    if stack is not None:
        delete_stack(self, stack)


def install() -> None:
    from moto.cloudformation.models import CloudFormationBackend, Stack
    from moto.cloudformation.responses import CloudFormationResponse

    CloudFormationBackend.create_stack = backend_create_stack
    CloudFormationBackend.delete_stack = backend_delete_stack

    def stack_resources(self: Any) -> list[Any]:
        parsed = self.resource_map._parsed_resources
        declared = self.resource_map._resource_json_map
        return [parsed[k] for k in declared if parsed.get(k) is not None
                and not isinstance(parsed[k], (str, int, float, list, dict))]

    Stack.stack_resources = property(stack_resources)
    CloudFormationResponse.create_stack = create_stack
    CloudFormationResponse.update_stack = update_stack
    CloudFormationResponse.delete_stack = delete_stack_action
