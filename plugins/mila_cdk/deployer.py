"""The ``cdk`` deployer: ``cdk synth`` writes the CloudFormation, mila deploys each stack.

A deploy runs ``cdk synth --output .mila/build/cdk/<service>/<env>/<region>`` in the app's
folder with ``--context mila:env=<env> --context mila:region=<region>``, each resolved
``[service].parameters`` value as ``--context NAME=value`` (and as an environment variable),
the service's environment-file variables (all but secrets) as environment variables, and
``CDK_DEFAULT_REGION`` set to the region. ``cdk synth`` needs no bootstrap and no deploy
role. Then, for each stack of the app, dependencies first: its file assets (zips, nested
templates) are published to mila's artifacts bucket under their content hash (see
:mod:`.assembly`; no ``cdk bootstrap``), and the ``cloudformation`` deployer deploys its
template, with the environment files' variables added to its Lambda functions (as the
``cloudformation`` deployer does), through a change set.

Stacks are named ``<project>-<service>-<env>-<stack id>`` and tagged ``mila:cdk-stack`` (the
stack id) and ``mila:cdk-order`` (its place in the deploy order) besides mila's own tags, so
``destroy`` finds every stack of the service by its tags — even after the code is gone — and
deletes them in reverse order. A stack that left the app is deleted after the others deployed.
The service's outputs are every stack's outputs by ``OutputKey`` (but the ``ExportsOutput…``
ones the CDK generates for its cross-stack references); an ``OutputKey`` two stacks share is
given as ``<stack id>.<OutputKey>`` for both.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from typing import Any

from mila_cloudformation.deployer import (
    StackDeployer,
    StackSettings,
    _Run,
    stack_name,
    translated,
)
from mila_cloudformation.templates import Template, dump_template
from mila_cloudformation.variables import deliver_variables
from mila_node import (
    Tool,
    find_executable,
    plain_variables,
    run_tool,
    service_findings,
    tool_environment,
)

from mila.errors import DeployError
from mila.model import Action, DeployResult, Finding, Workspace
from mila.protocols import DeployContext

from . import NAME, VERSION
from .assembly import Assembly, Stack, read_assembly, rewrite

TOOL = Tool(("cdk",), "aws-cdk", NAME)
TAG_STACK = "mila:cdk-stack"
TAG_ORDER = "mila:cdk-order"
#: the prefix of the outputs the CDK generates for cross-stack references (not the app's own)
CDK_EXPORTS = "ExportsOutput"


class CdkDeployer(StackDeployer):
    """Deploys the stacks of a CDK app, each as :class:`StackDeployer` deploys a template."""

    version = VERSION

    def prefix(self, action: Action, context: DeployContext) -> str:
        return action.stack_name or stack_name(context.project, action.service,
                                               action.environment)

    def synth(self, action: Action, context: DeployContext, ws: Workspace) -> Assembly:
        folder = context.root / ws.path
        out = context.root / ".mila" / "build" / NAME / ws.name / action.environment / context.region
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [*find_executable(TOOL, folder, context.root), "synth", "--quiet",
                   "--output", str(out), "--no-notices", "--no-version-reporting",
                   "--context", f"mila:env={action.environment}",
                   "--context", f"mila:region={context.region}"]
        for key, value in sorted(context.parameters.items()):
            command += ["--context", f"{key}={value}"]
        env = tool_environment({**plain_variables(context.variables, context.resolved_variables),
                                **context.parameters, "MILA_PROJECT": context.project,
                                "MILA_ENV": action.environment, "MILA_REGION": context.region,
                                "CDK_DEFAULT_REGION": context.region,
                                "CDK_DISABLE_VERSION_CHECK": "1"})
        context.report("synthesizing", "cdk synth")
        run_tool(command, cwd=folder, env=env, log=context.log, cancel=context.cancel,
                 what=f"{ws.path}: cdk synth")
        return read_assembly(out, f"{ws.path} (cdk.out)")

    def validate(self, action: Action, context: DeployContext) -> list[Finding]:
        """Plan-time checks, no process run and no AWS call: the ``[service]`` keys, Node.js
        and the CDK installed. (The app itself runs at deploy time, in ``cdk synth``.)"""
        return service_findings(TOOL, context, StackSettings.from_workspace)

    def deploy(self, action: Action, context: DeployContext) -> DeployResult:
        ws = context.workspace
        if ws is None:
            raise DeployError(f"cannot deploy {action.service}: its workspace is gone")
        assembly = self.synth(action, context, ws)
        settings = StackSettings.from_workspace(ws)
        prefix = self.prefix(action, context)
        identity = self.verify(context.region)
        account = getattr(identity, "account", None)
        results: list[tuple[Stack, DeployResult]] = []
        names = {s.cdk_name: f"{prefix}-{s.artifact_id}"[:128] for s in assembly.stacks}
        for order, stack in enumerate(assembly.stacks):
            name = names[stack.cdk_name]
            run = _Run(self, action, context, name)
            run.log(f"{self.name}: stack {name} in {context.region} from {stack.template.name}")
            tagged = dataclasses.replace(settings, tags={**settings.tags, TAG_STACK:
                                                         stack.artifact_id, TAG_ORDER: str(order)})
            results.append((stack, _translated(run, lambda r=run, s=stack, t=tagged:
                                               self._deploy_stack(r, s, assembly, t, account,
                                                                  names))))
        removed = self._delete_stacks(action, context, keep=set(names.values()))
        changed = removed > 0 or any(r.changed for _, r in results)
        message = f"{len(results)} stack(s)" + (f", {removed} removed" if removed else "")
        return DeployResult(stack_name=prefix, stack_id=results[-1][1].stack_id if results else None,
                            outputs=merged_outputs(results), changed=changed, message=message)

    def _deploy_stack(self, run: _Run, stack: Stack, assembly: Assembly, settings: StackSettings,
                      account: str | None, names: dict[str, str]) -> DeployResult:
        shown = stack.template.name
        body = json.loads(stack.template.read_text(encoding="utf-8"))
        store = self.store(run, account)
        body = rewrite(body, assembly, store.bucket, lambda data, ext: store.put(data, ext, run.log),
                       shown, names=names)
        text = json.dumps(body, sort_keys=True)
        template = Template(path=stack.template, shown=shown, text=text, body=body)
        missing = [p for p, spec in template.parameters.items()
                   if not (isinstance(spec, dict) and "Default" in spec)]
        if missing:
            raise DeployError(f"{shown}: CfnParameters without a default ({', '.join(missing)})",
                              hint="give them a default, or read values from the context "
                                   "(`[service].parameters` arrive as --context NAME=value)")
        delivery = deliver_variables(template, run.context)  # env files -> Lambda functions
        for warning in delivery.warnings:
            run.log(f"warning: {warning}")
        template = delivery.template
        return self._deploy(run, template, dump_template(template.body), dict(delivery.parameters),
                            settings)

    # -- destroy

    def destroy(self, action: Action, context: DeployContext) -> DeployResult:
        self.verify(context.region)
        removed = self._delete_stacks(action, context, keep=set())
        return DeployResult(stack_name=self.prefix(action, context), changed=removed > 0,
                            message=f"{removed} stack(s) deleted" if removed else "already gone")

    def _delete_stacks(self, action: Action, context: DeployContext, keep: set[str]) -> int:
        """Delete the service's stacks (found by their tags) not in ``keep``, last first."""
        cfn = self.client("cloudformation", context.region)
        wanted = {"mila:project": context.project, "mila:env": action.environment,
                  "mila:service": action.service}
        found: list[tuple[int, dict[str, Any]]] = []
        for page in cfn.get_paginator("describe_stacks").paginate():
            for stack in page.get("Stacks", []):
                tags = {t["Key"]: t["Value"] for t in stack.get("Tags") or []}
                if TAG_STACK in tags and all(tags.get(k) == v for k, v in wanted.items()) \
                        and stack["StackName"] not in keep \
                        and stack["StackStatus"] != "DELETE_COMPLETE":
                    found.append((int(tags.get(TAG_ORDER, "0")), stack))
        for _, stack in sorted(found, key=lambda item: -item[0]):
            run = _Run(self, action, context, stack["StackName"])
            _translated(run, lambda r=run, s=stack: r.delete(s, "destroy") or DeployResult())
        return len(found)


def merged_outputs(results: list[tuple[Stack, DeployResult]]) -> dict[str, str]:
    """Every stack's outputs by key (``<stack id>.<key>`` for a key two stacks share), without
    the ``ExportsOutput…`` outputs the CDK adds for its own cross-stack references."""
    results = [(stack, dataclasses.replace(result, outputs={
        k: v for k, v in result.outputs.items() if not k.startswith(CDK_EXPORTS)}))
        for stack, result in results]
    counts: dict[str, int] = {}
    for _, result in results:
        for key in result.outputs:
            counts[key] = counts.get(key, 0) + 1
    merged: dict[str, str] = {}
    for stack, result in results:
        for key, value in result.outputs.items():
            merged[key if counts[key] == 1 else f"{stack.artifact_id}.{key}"] = value
    return merged


def _translated(run: _Run, step: Any) -> DeployResult:
    """Run one stack's step, turning AWS errors into :class:`DeployError` as
    :meth:`StackDeployer.deploy` does."""
    with translated(run.name, run.region,
                    f"cancelled while working on stack {run.name} in {run.region}"):
        return step()  # type: ignore[no-any-return]


