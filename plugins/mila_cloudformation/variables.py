"""Delivering a service's environment variables to its Lambda functions.

Every ``AWS::Serverless::Function`` and ``AWS::Lambda::Function`` of the template gets each
variable in ``Environment.Variables``, unless the template sets that name itself (in the
function or, for SAM, in ``Globals.Function``): the template's value wins, with a warning in
the action log.

Values that hold references go to CloudFormation as dynamic references pinned to the version
the plan checked (``{{resolve:ssm:/p:3}}``, ``{{resolve:secretsmanager:…}}``), so their values
never pass through mila and a new version is a template change. A reference CloudFormation
cannot resolve in a Lambda environment (an SSM SecureString) is read at deploy time and passed
as a ``NoEcho`` template parameter (``MilaVariable…``): never logged, masked by CloudFormation.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mila.errors import DeployError
from mila.protocols import DeployContext
from mila.variables import ResolvedReference, ResolvedVariable

from .templates import Template, dump_template

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
PARAMETER_PREFIX = "MilaVariable"
#: Set by the Lambda runtime: a function configuration that sets one is refused by Lambda.
LAMBDA_RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ"})


@dataclass
class Delivery:
    """The template with the variables added, the ``NoEcho`` parameters' values, warnings."""

    template: Template
    parameters: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def parameter_name(variable: str) -> str:
    """A template parameter name for a variable: alphanumeric, unique per variable name."""
    digest = hashlib.sha256(variable.encode()).hexdigest()[:8]
    return f"{PARAMETER_PREFIX}{re.sub(r'[^A-Za-z0-9]', '', variable)[:100]}{digest}"


def _dynamic(ref: ResolvedReference) -> str:
    assert ref.info.dynamic_reference is not None
    return ref.info.dynamic_reference


def _template_names(body: Mapping[str, Any]) -> set[str]:
    """Names SAM's ``Globals.Function.Environment.Variables`` sets for every function."""
    globals_ = body.get("Globals")
    function = globals_.get("Function") if isinstance(globals_, dict) else None
    env = function.get("Environment") if isinstance(function, dict) else None
    names = env.get("Variables") if isinstance(env, dict) else None
    return set(names) if isinstance(names, dict) else set()


def deliver_variables(template: Template, context: DeployContext) -> Delivery:
    """Add ``context.resolved_variables`` to every Lambda function of ``template``."""
    variables: Mapping[str, ResolvedVariable] = context.resolved_variables
    resources = template.body.get("Resources") or {}
    functions = [k for k, r in resources.items()
                 if isinstance(r, dict) and r.get("Type") in FUNCTION_TYPES]
    if not variables or not functions:
        return Delivery(template)
    reserved = sorted(set(variables) & LAMBDA_RESERVED)
    if reserved:  # before any call to AWS: Lambda would refuse the function
        where = ", ".join(f"{n} ({variables[n].source})" for n in reserved)
        raise DeployError(f"{template.shown}: Lambda reserves {where} for its runtime",
                          hint="rename the variable in the environment file")
    body = copy.deepcopy(template.body)
    delivery = Delivery(template)
    values: dict[str, Any] = {}
    for name, variable in variables.items():
        if all(r.info.dynamic_reference for r in variable.references):
            values[name] = variable.render(_dynamic, context.dependency_outputs)
            continue
        param = parameter_name(name)
        delivery.parameters[param] = context.variables[name]  # read now; never logged
        body.setdefault("Parameters", {})[param] = {
            "Type": "String", "NoEcho": True,
            "Description": f"mila: environment variable {name} ({variable.source})"}
        values[name] = {"Ref": param}
    shared = _template_names(body)
    for logical_id in functions:
        props = body["Resources"][logical_id].setdefault("Properties", {})
        env = props.setdefault("Environment", {})
        own = env.setdefault("Variables", {}) if isinstance(env, dict) else None
        if not isinstance(own, dict):
            delivery.warnings.append(f"{logical_id}: Environment.Variables is not a mapping; "
                                     "mila's variables were not added to it")
            continue
        for name, value in values.items():
            if name in own or name in shared:
                where = "Globals" if name not in own else logical_id
                delivery.warnings.append(f"{logical_id}: {name} is set by the template "
                                         f"({where}); its value wins over "
                                         f"{variables[name].source}")
                continue
            own[name] = value
    delivery.template = replace(template, body=body, text=dump_template(body))
    return delivery
