"""The ``serverless`` deployer: the Serverless Framework packages, mila's CloudFormation engine
deploys.

A deploy runs ``osls package --stage <stage> --region <region> --package <folder>`` (the
framework's own ``package`` step: no AWS call, no credentials needed) with, as environment
variables (``${env:NAME}`` in ``serverless.yml``), the service's variables from its
environment files (all but secrets), its resolved ``[service].parameters``, and
``MILA_PROJECT``, ``MILA_ENV`` and ``MILA_REGION``. The output folder is
``.mila/build/serverless/<service>/<stage>/<region>/`` (inside ``.mila/``, so it never reaches
a checksum). Then it reads ``cloudformation-template-update-stack.json`` and points its
artifacts at **mila's artifacts bucket** instead of the framework's deployment bucket:

* the ``ServerlessDeploymentBucket`` and its policy are removed from the template, with the
  ``ServerlessDeploymentBucketName`` output (there is no framework bucket, so no two-step
  create and nothing left in a bucket when the stack is removed);
* every ``Code``/``Content`` that named an object of the framework's artifact folder
  (``serverless/<service>/<stage>/<timestamp>/x.zip``) names the zip the framework wrote; the
  CloudFormation deployer then uploads it to ``mila-artifacts-<account>-<region>`` under its
  content hash (the framework's zips are deterministic, so the same code is the same key).

The rest is the ``cloudformation`` deployer: the environment files' variables added to every
function (secrets as dynamic references), change sets, waiting, events, rollback handling,
outputs. The stack is named as the framework names it (``<service>-<stage>``, or
``provider.stackName``) unless ``[service].stack_name`` says otherwise.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mila_cloudformation.deployer import StackDeployer, StackSettings
from mila_cloudformation.packaging import RULES
from mila_cloudformation.templates import Template
from mila_node import (
    Tool,
    find_executable,
    plain_variables,
    run_tool,
    service_findings,
    tool_environment,
)

from mila.errors import DeployError
from mila.model import Action, Finding, Workspace
from mila.protocols import DeployContext

from . import NAME, VERSION, config_file
from . import config as sls_config

TOOL = Tool(("osls", "serverless", "sls"), "osls", NAME)
TEMPLATE_FILE = "cloudformation-template-update-stack.json"
STATE_FILE = "serverless-state.json"
#: the framework's deployment bucket: replaced by mila's artifacts bucket
FRAMEWORK_BUCKET = ("ServerlessDeploymentBucket", "ServerlessDeploymentBucketPolicy")
FRAMEWORK_OUTPUTS = ("ServerlessDeploymentBucketName",)


@dataclass(frozen=True)
class PackagedTemplate(Template):
    """A template the framework generated, with the stack name it chose."""

    framework_stack_name: str = ""


def build_folder(context: DeployContext, service: str, stage: str) -> Path:
    return context.root / ".mila" / "build" / NAME / service / stage / context.region


class ServerlessDeployer(StackDeployer):
    """:class:`StackDeployer` whose template is the framework's packaged one."""

    version = VERSION

    def stage(self, action: Action, ws: Workspace | None) -> str:
        stage = ws.settings.get("stage") if ws is not None else None
        return str(stage) if stage else action.environment

    def template(self, action: Action, context: DeployContext, ws: Workspace) -> Template:
        folder = context.root / ws.path
        stage = self.stage(action, ws)
        out = build_folder(context, ws.name, stage)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        command = [*find_executable(TOOL, folder, context.root), "package", "--stage", stage,
                   "--region", context.region, "--package", str(out)]
        env = tool_environment({
            **plain_variables(context.variables, context.resolved_variables),
            **context.parameters, "MILA_PROJECT": context.project,
            "MILA_ENV": action.environment, "MILA_REGION": context.region,
            "SLS_TELEMETRY_DISABLED": "1", "SLS_TRACKING_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off", "SLS_DEPRECATION_DISABLE": "*"})
        context.report("packaging", f"serverless package --stage {stage}")
        run_tool(command, cwd=folder, env=env, log=context.log, cancel=context.cancel,
                 what=f"{ws.path}: serverless package")
        return packaged_template(out, context.root)

    def stack_name_for(self, action: Action, context: DeployContext,
                       template: Template | None = None) -> str:
        ws = context.workspace
        configured = ws.settings.get("stack_name") if ws is not None else None
        if configured:
            return str(configured)
        if isinstance(template, PackagedTemplate) and template.framework_stack_name:
            return template.framework_stack_name
        if action.stack_name:
            return action.stack_name
        # destroying a service whose first deploy failed: the framework's naming, if readable
        name = sls_config.service_name(config_file(context.root / ws.path)) if ws else None
        if name:
            return f"{name}-{self.stage(action, ws)}"
        return super().stack_name_for(action, context, template)

    def validate(self, action: Action, context: DeployContext) -> list[Finding]:
        """Plan-time checks, no process run and no AWS call: the ``[service]`` keys, Node.js
        and the framework installed. (The framework validates ``serverless.yml`` itself when
        it packages, at deploy time.)"""
        return service_findings(TOOL, context, StackSettings.from_workspace)

    def parameters(self, action: Action, context: DeployContext, ws: Workspace,
                   template: Template) -> dict[str, str]:
        # the service's parameters reached the framework as environment variables
        return {}


def packaged_template(out: Path, root: Path) -> PackagedTemplate:
    """The framework's template in ``out``, pointed at the zips beside it."""
    shown = _shown(out / TEMPLATE_FILE, root)
    try:
        body = json.loads((out / TEMPLATE_FILE).read_text(encoding="utf-8"))
        state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeployError(f"{shown}: the framework's package step left no readable template "
                          f"({exc})", hint="run `osls package` in the service's folder to see "
                                           "why") from None
    service = state.get("service") or {}
    artifact_dir = str((state.get("package") or {}).get("artifactDirectoryName") or "")
    stage = str((service.get("provider") or {}).get("stage") or "")
    name = (service.get("provider") or {}).get("stackName") or \
        f"{(service.get('serviceObject') or {}).get('name') or service.get('service')}-{stage}"
    body = use_local_artifacts(body, artifact_dir, shown)
    path = out / "mila-template.json"
    text = json.dumps(body, indent=1)
    path.write_text(text, encoding="utf-8")
    return PackagedTemplate(path=path, shown=_shown(path, root), text=text, body=body,
                            framework_stack_name=str(name))


def use_local_artifacts(body: dict[str, Any], artifact_dir: str, shown: str) -> dict[str, Any]:
    """``body`` without the framework's bucket, each artifact property naming its local zip."""
    body = json.loads(json.dumps(body))
    resources = body.get("Resources") or {}
    for logical in FRAMEWORK_BUCKET:
        resources.pop(logical, None)
    for output in FRAMEWORK_OUTPUTS:
        (body.get("Outputs") or {}).pop(output, None)
    prefix = artifact_dir.rstrip("/") + "/"
    for resource in resources.values():
        properties = resource.get("Properties") if isinstance(resource, dict) else None
        if not isinstance(properties, dict):
            continue
        for rule in RULES:
            if rule.form != "dict" or resource.get("Type") != rule.resource_type:
                continue
            value = _get(properties, rule.path)
            key = value.get(rule.key_key) if isinstance(value, dict) else None
            if isinstance(key, str) and artifact_dir and key.startswith(prefix):
                _set(properties, rule.path, key[len(prefix):])
    text = json.dumps(body)
    leftover = [n for n in (FRAMEWORK_BUCKET[0], prefix) if n != "/" and n in text]
    if leftover:
        where = [logical for logical, r in resources.items()
                 if any(n in json.dumps(r) for n in leftover)]
        raise DeployError(
            f"{shown}: {', '.join(where) or 'the template'} still refers to the framework's "
            f"deployment bucket ({', '.join(leftover)}), which mila does not create",
            hint="mila packages Lambda code and layers; reference other artifacts from an "
                 "S3 bucket of your own")
    return body


def _get(properties: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = properties
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _set(properties: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        properties = properties.setdefault(part, {})
    properties[path[-1]] = value


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
