"""The deployer shared by ``cloudformation`` and ``sam``: one stack per service, environment
and region, changed only through change sets.

A deploy: read the template (syntax errors stop here, before any call to AWS) → resolve the
parameters → package local paths to S3 → look at the stack (wait for someone else's
operation, delete a stack that never got created, refuse one stuck in UPDATE_ROLLBACK_FAILED)
→ create a change set (CREATE or UPDATE, a unique name, addressed by its ARN from then on) →
wait → log its changes → execute → wait for the stack, streaming its events into the action
log and the progress line → return the outputs. An empty change set is success with
``changed=False`` (the change set is deleted). A failure names the first resources that
failed, with their type and reason.

The SAM deployer is this same code: the template goes to CloudFormation with its
``Transform`` as written and CloudFormation (or the sandbox) expands it; only the packaged
properties differ (``CodeUri``…), and :mod:`.packaging` knows them all.

Waiting polls with backoff (``poll_initial`` growing by ``poll_factor`` up to ``poll_max``
seconds) within a total of the service's ``timeout`` minutes, and stops as soon as
``context.cancel`` is set — cancelling an update in progress, which CloudFormation then rolls
back. Throttling is retried by the clients (adaptive mode) and by the polls.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mila.config import ProjectConfig
from mila.errors import ConfigError, DeployError, MilaError
from mila.model import Action, DeployResult, Finding, ResourceChange, Workspace
from mila.protocols import BuildContext, DeployContext

from .packaging import ArtifactStore, needs_packaging, package_template
from .templates import Template, dump_template, find_template, load_template
from .variables import deliver_variables
from .version import deployer_version

CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
#: The largest ``TemplateBody`` CloudFormation accepts; larger templates go through S3.
MAX_TEMPLATE_BODY = 51_200
_STACK_NAME_MAX = 128
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_SUCCESS = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
#: States from which a stack cannot be updated, only deleted and created again.
_RECREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}
_STUCK = {"UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"}
_THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}


def stack_name(project: str, service: str, environment: str) -> str:
    """``<project>-<service>-<env>`` made valid for CloudFormation: letters, digits and dashes,
    starting with a letter, at most 128 characters (a long name keeps a hash of the full one,
    so two long names never collide)."""
    full = f"{project}-{service}-{environment}"
    name = re.sub(r"[^A-Za-z0-9-]", "-", full)
    if not name[:1].isalpha():
        name = f"m-{name}"
    if len(name) > _STACK_NAME_MAX:
        digest = hashlib.sha256(full.encode()).hexdigest()[:8]
        name = f"{name[:_STACK_NAME_MAX - 9].rstrip('-')}-{digest}"
    return name


def console_url(region: str, stack_id: str) -> str:
    return (f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
            f"#/stacks/stackinfo?stackId={quote(stack_id, safe='')}")


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(exc)


def _is_missing(exc: Exception) -> bool:
    return _code(exc) == "ValidationError" and "does not exist" in _message(exc)


def _empty(reason: str) -> bool:
    """Whether an error or a change set's status reason says there is nothing to change."""
    return any(text in reason for text in _NO_CHANGES)


class _Cancelled(Exception):
    """``context.cancel`` was set while waiting."""


class _NoChanges(Exception):
    """The change set is empty (and deleted): ``stack`` is as the template says."""

    def __init__(self, stack_id: str, stack: Mapping[str, Any]) -> None:
        super().__init__(stack_id)
        self.stack_id = stack_id
        self.stack = stack


@contextmanager
def translated(name: str, region: str, cancelled: str) -> Iterator[None]:
    """Raise what the block raises as a :class:`DeployError` for stack ``name``: ``cancelled``
    (the message) for a cancellation, the code and message of an AWS error; anything else as
    it is."""
    try:
        yield
    except Exception as exc:
        error = _translate(exc, name, region, cancelled)
        if error is exc:
            raise
        raise error from None


def _translate(exc: Exception, name: str, region: str, cancelled: str) -> Exception:
    if isinstance(exc, _Cancelled):
        return DeployError(cancelled)
    code = _code(exc)
    if isinstance(exc, MilaError) or not code:
        return exc
    if "TerminationProtection" in _message(exc):
        return DeployError(f"stack {name} in {region} has termination protection enabled; "
                           "mila does not remove it")
    hint = None
    if code == "InsufficientCapabilitiesException":
        hint = ("allow it in the service's mila.toml: capabilities = "
                '["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]')
    return DeployError(f"stack {name} in {region}: {code}: {_message(exc)}",
                       details=repr(exc), hint=hint)


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class StackSettings:
    """The deployer-specific keys of ``[service]``, validated."""

    capabilities: tuple[str, ...] = CAPABILITIES
    tags: Mapping[str, str] = field(default_factory=dict)
    termination_protection: bool | None = None
    lint_ignore: tuple[str, ...] = ()

    @classmethod
    def from_workspace(cls, ws: Workspace) -> StackSettings:
        settings, file = ws.settings, ws.config_file
        capabilities = settings.get("capabilities", list(CAPABILITIES))
        if not isinstance(capabilities, list) or any(c not in CAPABILITIES for c in capabilities):
            raise ConfigError(f"expected a list of {', '.join(CAPABILITIES)}, got {capabilities!r}",
                              file=file, key="service.capabilities")
        tags = settings.get("tags", {})
        if not isinstance(tags, Mapping) or any(not isinstance(v, str) for v in tags.values()):
            raise ConfigError(f"expected a table of strings, got {tags!r}", file=file,
                              key="service.tags", hint='write it as tags = { team = "web" }')
        for key in tags:
            if key.lower().startswith(("aws:", "mila:")):
                raise ConfigError(f"tag '{key}': the prefixes aws: and mila: are reserved",
                                  file=file, key="service.tags")
        protection = settings.get("termination_protection")
        if protection is not None and not isinstance(protection, bool):
            raise ConfigError(f"expected true or false, got {protection!r}", file=file,
                              key="service.termination_protection")
        ignore = settings.get("lint_ignore", [])
        if not isinstance(ignore, list) or any(not isinstance(r, str) or not r for r in ignore):
            raise ConfigError(f"expected a list of cfn-lint rule ids, got {ignore!r}", file=file,
                              key="service.lint_ignore", hint='write it as lint_ignore = ["W2001"]')
        return cls(tuple(capabilities), dict(tags), protection, tuple(ignore))


# ----------------------------------------------------------------------------- one action


class _Run:
    """The state of one deploy or destroy: clients, log, deadline, seen events."""

    def __init__(self, deployer: StackDeployer, action: Action, context: DeployContext,
                 name: str) -> None:
        self.deployer = deployer
        self.action = action
        self.context = context
        self.region = context.region
        self.name = name
        self.cfn = deployer.client("cloudformation", context.region)
        ws = context.workspace
        minutes = ws.timeout_minutes if ws is not None else 60
        self.timeout_minutes = minutes
        self.deadline = time.monotonic() + minutes * 60
        self.seen_events: set[str] = set()
        self.events: list[dict[str, Any]] = []  # since the operation started, oldest first

    # -- output

    def log(self, line: str) -> None:
        if self.context.log is None:
            return
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        self.context.log.write(f"{stamp} {line}\n")
        self.context.log.flush()

    def report(self, phase: str, message: str = "") -> None:
        self.context.report(phase, message)

    # -- waiting

    def poll(self, what: str, check: Callable[[], Any]) -> Any:
        """Call ``check`` until it returns something other than ``None``, with backoff, within
        the deadline; ``_Cancelled`` once ``context.cancel`` is set."""
        delay = self.deployer.poll_initial
        while True:
            try:
                result = check()
            except Exception as exc:
                if _code(exc) not in _THROTTLED:
                    raise
                result = None
            if result is not None:
                return result
            if self.context.cancel.is_set():
                raise _Cancelled()
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise DeployError(
                    f"timed out after {self.timeout_minutes} min waiting for {what} "
                    f"(stack {self.name} in {self.region})",
                    hint="raise `timeout` (minutes) in the service's mila.toml, or look at the "
                         "stack in the console")
            if self.context.cancel.wait(min(delay, remaining)):
                raise _Cancelled()
            delay = min(delay * self.deployer.poll_factor, self.deployer.poll_max)

    # -- the stack

    def describe(self, name_or_id: str | None = None) -> dict[str, Any] | None:
        """The stack, or ``None`` when there is none (deleted stacks count as none)."""
        try:
            stacks = self.cfn.describe_stacks(StackName=name_or_id or self.name)["Stacks"]
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            return None
        return dict(stacks[0])

    def mark_events_seen(self, stack_id: str) -> None:
        """Remember the events that exist now: only later ones are streamed."""
        self.events = []
        try:
            page = self.cfn.describe_stack_events(StackName=stack_id)
        except Exception as exc:
            if _is_missing(exc):
                return
            raise
        self.seen_events.update(e["EventId"] for e in page.get("StackEvents", []))

    def stream_events(self, stack_id: str) -> None:
        """Log the stack's events since the last call, oldest first."""
        new: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                args = {"StackName": stack_id, **({"NextToken": token} if token else {})}
                page = self.cfn.describe_stack_events(**args)
                done = False
                for event in page.get("StackEvents", []):
                    if event["EventId"] in self.seen_events:
                        done = True
                        break
                    new.append(event)
                token = page.get("NextToken")
                if done or not token:
                    break
        except Exception as exc:
            if _is_missing(exc) or _code(exc) in _THROTTLED:
                return
            raise
        for event in reversed(new):
            self.seen_events.add(event["EventId"])
            self.events.append(event)
            reason = event.get("ResourceStatusReason")
            self.log(f"  {event.get('LogicalResourceId')} ({event.get('ResourceType')}) "
                     f"{event.get('ResourceStatus')}{': ' + reason if reason else ''}")
        if new:
            last = new[0]
            self.report(self.phase, f"{last.get('LogicalResourceId')} {last.get('ResourceStatus')}")

    phase = "deploying"

    def failures(self) -> list[dict[str, Any]]:
        """The failed resource events of this operation: the causes first, consequences
        (cancelled siblings, the stack's own event) only when nothing else failed."""
        failed = [e for e in self.events if str(e.get("ResourceStatus", "")).endswith("_FAILED")]
        causes = [e for e in failed
                  if e.get("ResourceType") != "AWS::CloudFormation::Stack"
                  and "cancelled" not in str(e.get("ResourceStatusReason", "")).lower()]
        return causes or failed

    def wait_until_settled(self, stack: dict[str, Any]) -> dict[str, Any] | None:
        """Wait while another actor's operation is in progress; the stack afterwards."""
        status = stack["StackStatus"]
        if not _in_progress(status):
            return stack
        self.phase = "waiting"
        self.report("waiting", f"stack {self.name} is {status} (another operation)")
        self.log(f"stack {self.name} is {status}: waiting for that operation to end")
        stack_id = stack["StackId"]

        def settled() -> Any:
            found = self.describe(self.name)
            if found is None:
                return {"gone": True}
            return found if not _in_progress(found["StackStatus"]) else None

        result = self.poll(f"{status} to end", settled)
        if result.get("gone"):
            self.log(f"stack {self.name} ({stack_id}) is gone")
            return None
        self.log(f"stack {self.name} is now {result['StackStatus']}")
        return dict(result)

    def delete(self, stack: dict[str, Any], why: str) -> None:
        """Delete the stack and wait until it is gone."""
        stack_id = stack["StackId"]
        self.phase = "deleting"
        self.report("deleting", why)
        self.log(f"deleting stack {self.name} ({stack_id}): {why}")
        self.mark_events_seen(stack_id)
        self.cfn.delete_stack(StackName=stack_id,
                              ClientRequestToken=f"mila-delete-{uuid.uuid4().hex[:16]}")

        def deleted() -> Any:
            # by name: a deleted stack is simply not found (a deleted stack's id stays
            # describable with DELETE_COMPLETE on AWS, but must never be needed here)
            found = self.describe(self.name)
            if found is None or found["StackId"] != stack_id:
                return True
            self.stream_events(stack_id)
            if found["StackStatus"] == "DELETE_FAILED":
                return found
            return None

        result = self.poll("the stack to be deleted", deleted)
        if result is not True:
            raise self.failure(result, "could not be deleted",
                               "remove what blocks the deletion (a non-empty bucket, a resource "
                               "in use by another stack…) and run again")
        self.log(f"stack {self.name} deleted")

    def failure(self, stack: dict[str, Any], what: str, hint: str) -> DeployError:
        """A :class:`DeployError` naming the first failed resources."""
        failures = self.failures()
        status = stack.get("StackStatus", "?")
        url = console_url(self.region, stack.get("StackId", self.name))
        lines = [f"{e.get('LogicalResourceId')} ({e.get('ResourceType')}): "
                 f"{e.get('ResourceStatusReason') or e.get('ResourceStatus')}" for e in failures]
        reason = stack.get("StackStatusReason")
        if lines:
            first = lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")
        else:
            first = reason or "no failed resource was reported"
        details = "\n".join(["failed resources:", *(f"  {line}" for line in lines)] if lines
                            else [f"stack status reason: {reason}"] if reason else [])
        details += f"\nconsole: {url}"
        return DeployError(f"stack {self.name} in {self.region} {what} ({status}): {first}",
                           details=details.strip(), hint=f"{hint}; console: {url}")


def _in_progress(status: str) -> bool:
    return status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"


# ----------------------------------------------------------------------------- the deployer


class StackDeployer:
    """Deploys a service's CloudFormation (or SAM) template as one stack.

    ``client(service, region)`` makes boto3 clients (default: :func:`mila_aws.session.client`);
    ``verify(region)`` is called before the first write (default:
    :func:`mila_aws.session.verify_target`) and returns the identity.
    """


    def __init__(self, name: str, config: ProjectConfig | None, *,
                 poll_initial: float = 0.05, poll_max: float = 5.0, poll_factor: float = 1.5,
                 client: Callable[[str, str], Any] | None = None,
                 verify: Callable[[str], Any] | None = None) -> None:
        self.name = name
        self.version = deployer_version()
        self.config = config
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.poll_factor = poll_factor
        self._client = client
        self._verify = verify
        # one deployer serves every worker thread of a run
        self._stores: dict[tuple[str, str], ArtifactStore] = {}
        self._stores_lock = threading.Lock()

    # -- plumbing

    def client(self, service: str, region: str) -> Any:
        if self._client is not None:
            return self._client(service, region)
        from mila_aws.session import client

        return client(service, region)

    def verify(self, region: str) -> Any:
        if self._verify is not None:
            return self._verify(region)
        from mila_aws.session import verify_target

        return verify_target(region)

    def store(self, run: _Run, account: str | None) -> ArtifactStore:
        """The artifacts bucket of this account and region (one per deployer instance, so a
        run secures each bucket once)."""

        region = run.region
        configured = self.config.artifacts_bucket if self.config is not None else None
        if configured:
            bucket = configured.replace("${region}", region).replace("${account}", account or "")
        else:
            if not account:
                raise DeployError("cannot name the artifacts bucket: the AWS account is unknown",
                                  hint="set [project].artifacts_bucket in mila.toml")
            bucket = f"mila-artifacts-{account}-{region}"
        key = (bucket, region)
        with self._stores_lock:
            if key not in self._stores:
                self._stores[key] = ArtifactStore(
                    self.client("s3", region), bucket, region, prefix=run.context.project,
                    account=account, owned=not configured)
            return self._stores[key]

    # -- build

    def build(self, workspace: Workspace, context: BuildContext) -> bool:
        """Build the template's functions and layers (see :mod:`.build`) into the cache;
        ``False`` when it has nothing to build."""
        from .build import build_targets

        path = find_template(context.root / workspace.path, workspace.template)
        if path is None:  # a front-end synthesizes it at deploy time, and builds it then
            return False
        template = load_template(path, context.root)
        if not build_targets(template.body, template.path.parent):
            return False

        def log(line: str) -> None:
            if context.log is not None:
                context.log.write(line + "\n")
                context.log.flush()

        context.report("building", "")
        self.built(template, context.root, context.packages, context.cache, log)
        return True

    def built(self, template: Template, root: Path, packages: Mapping[str, str], cache: Path,
              log: Callable[[str], None]) -> Template:
        """``template`` with its built functions pointing at their build artifacts."""
        from .build import BuildCache, built_template

        body = built_template(template.body, template.path.parent, root, packages,
                              BuildCache(cache), log)
        return template if body is None else replace(template, body=body)

    # -- deploy

    def deploy(self, action: Action, context: DeployContext) -> DeployResult:
        ws = context.workspace
        if ws is None:
            raise DeployError(f"cannot deploy {action.service}: its workspace is gone")
        template = self.template(action, context, ws)
        settings = StackSettings.from_workspace(ws)
        parameters = self.parameters(action, context, ws, template)
        name = self.stack_name_for(action, context, template)
        run = _Run(self, action, context, name)
        run.log(f"{self.name}: stack {name} in {context.region} from {template.shown}")
        with translated(name, context.region,
                        f"cancelled while deploying stack {name} in {context.region}"):
            template, body, parameters = self._stack_inputs(run, template, parameters)
            return self._deploy(run, template, body, parameters, settings)

    def _stack_inputs(self, run: _Run, template: Template, parameters: dict[str, str],
                      ) -> tuple[Template, str, dict[str, str]]:
        """Build, deliver the variables, package: the template, body and parameters a change
        set is made of."""
        context = run.context
        cache = (self.config.mila_dir if self.config is not None
                 else context.root / ".mila") / "cache" / "build"
        template = self.built(template, context.root, context.packages, cache, run.log)
        delivery = deliver_variables(template, context)  # env files -> Lambda functions
        for warning in delivery.warnings:
            run.log(f"warning: {warning}")
        template, parameters = delivery.template, {**parameters, **delivery.parameters}
        identity = self.verify(context.region)
        return template, self.package(run, template, getattr(identity, "account", None)), \
            parameters

    def describe_changes(self, action: Action, context: DeployContext) -> list[ResourceChange]:
        """What deploying would change, resource by resource, without changing it: an UPDATE
        change set is created, described and deleted (never executed); a stack that does not
        exist yet lists its template's resources as ``Add``. Artifacts are packaged (uploaded
        by content hash) as a deploy would, so code changes show."""
        ws = context.workspace
        if ws is None:
            return []
        template = self.template(action, context, ws)
        settings = StackSettings.from_workspace(ws)
        parameters = self.parameters(action, context, ws, template)
        name = self.stack_name_for(action, context, template)
        run = _Run(self, action, context, name)
        with translated(name, context.region, f"cancelled while describing stack {name}"):
            stack = run.describe()
            if stack is None or stack["StackStatus"] in _RECREATE \
                    or stack["StackStatus"] == "REVIEW_IN_PROGRESS":
                resources = template.body.get("Resources") or {}
                return [ResourceChange("Add", logical, str(r.get("Type", "")))
                        for logical, r in resources.items() if isinstance(r, dict)]
            if _in_progress(stack["StackStatus"]):
                raise DeployError(f"stack {name} in {context.region} is "
                                  f"{stack['StackStatus']}: ask again once it has settled")
            template, body, parameters = self._stack_inputs(run, template, parameters)
            return self._preview(run, body, parameters, settings)

    def _preview(self, run: _Run, body: str, parameters: Mapping[str, str],
                 settings: StackSettings) -> list[ResourceChange]:
        args = self._change_set_args(run, "UPDATE", body, parameters, settings, "mila-diff")
        try:
            arn = run.cfn.create_change_set(**args)["Id"]
        except Exception as exc:
            if _code(exc) == "ValidationError" and _empty(_message(exc)):
                return []
            raise

        def ready() -> Any:
            found = run.cfn.describe_change_set(ChangeSetName=arn)
            return found if found["Status"] in ("CREATE_COMPLETE", "FAILED") else None

        try:
            described = run.poll("the change set", ready)
            if described["Status"] == "FAILED":
                reason = str(described.get("StatusReason", ""))
                if _empty(reason):
                    return []
                raise DeployError(f"stack {run.name} in {run.region}: the change set failed: "
                                  f"{reason}")
            return [_resource_change(c) for c in self._changes(run, arn, described)]
        finally:
            try:
                run.cfn.delete_change_set(ChangeSetName=arn)
            except Exception as exc:
                run.log(f"could not delete change set {arn}: {_message(exc)}")

    def template(self, action: Action, context: DeployContext, ws: Workspace) -> Template:
        """The template to deploy: the workspace's own (a subclass may synthesize one; a
        front-end such as the ``serverless`` deployer does)."""
        path = find_template(context.root / ws.path, ws.template)
        if path is None:
            wanted = ws.template or "template.yaml, template.yml or template.json"
            raise DeployError(f"{ws.path}: no template found ({wanted})",
                              hint="add the template, or set `template` in the service's "
                                   "mila.toml")
        return load_template(path, context.root)

    def stack_name_for(self, action: Action, context: DeployContext,
                       template: Template | None = None) -> str:
        """The stack's name: the record's, else derived (overridable, with :meth:`template`;
        ``template`` is ``None`` when destroying)."""
        return action.stack_name or stack_name(context.project, action.service,
                                               action.environment)

    def parameters(self, action: Action, context: DeployContext, ws: Workspace,
                   template: Template) -> dict[str, str]:
        """The service's parameters as the core resolved them (``context.parameters``: the
        only resolution), checked against the template's."""
        values = dict(context.parameters)
        problems = parameter_problems(template, values, ws)
        if problems:
            message, hint = problems[0]
            raise DeployError(message, hint=hint)
        return values

    def validate(self, action: Action, context: DeployContext) -> list[Finding]:
        """Plan-time checks, no AWS call: the template parses, the settings are valid, every
        parameter the template needs has a value and none is unknown, and cfn-lint passes
        (once per template, for every region the service is planned in). A front-end whose
        :meth:`template` synthesizes the template (``serverless``, ``cdk``) is not checked
        here: synthesizing runs the framework, which is the deploy's work."""
        ws = context.workspace
        if ws is None or type(self).template is not StackDeployer.template:
            return []
        path = find_template(context.root / ws.path, ws.template)
        if path is None:
            wanted = ws.template or "template.yaml, template.yml or template.json"
            return [Finding(f"no template found ({wanted})", file=ws.path)]
        try:
            template = load_template(path, context.root)
            settings = StackSettings.from_workspace(ws)
        except MilaError as exc:
            return [Finding(str(exc))]
        where = ws.config_file or f"{ws.path}/mila.toml"
        findings = [Finding(f"{message} ({hint})", file=where, rule="parameters")
                    for message, hint in parameter_problems(template, context.parameters, ws)]
        from .lint import lint_template

        return findings + lint_template(template, context.environment.regions,
                                        settings.lint_ignore)

    def package(self, run: _Run, template: Template, account: str | None) -> str:
        """The template body to send, in canonical form (JSON, long-form intrinsics); packaged
        first when it names local paths."""
        if not needs_packaging(template.body):
            return dump_template(template.body)
        run.phase = "packaging"
        run.report("packaging")
        store = self.store(run, account)
        packaged, _ = package_template(template.body, template.path.parent, run.context.root, store,
                                       shown=template.shown, log=run.log)
        return dump_template(packaged)

    def _tags(self, run: _Run, settings: StackSettings) -> list[dict[str, str]]:
        tags = dict(settings.tags)
        tags.update({"mila:project": run.context.project, "mila:env": run.action.environment,
                     "mila:service": run.action.service})
        if run.action.checksum:
            tags["mila:checksum"] = run.action.checksum
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def _deploy(self, run: _Run, template: Template, body: str, parameters: Mapping[str, str],
                settings: StackSettings) -> DeployResult:
        stack = self._settle(run, run.describe())
        change_type = "CREATE" if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS" \
            else "UPDATE"
        try:
            arn, stack_id, changes = self._create_change_set(run, change_type, body, parameters,
                                                             settings, stack)
        except _NoChanges as empty:
            self._protect(run, empty.stack, settings)
            return DeployResult(stack_name=run.name, stack_id=empty.stack_id,
                                outputs=_outputs(empty.stack), changed=False, message="no changes")
        stack = self._execute_and_wait(run, arn, stack_id, change_type, len(changes))
        self._protect(run, stack, settings)
        outputs = _outputs(stack)
        run.log(f"stack {run.name} is {stack['StackStatus']}; outputs: "
                + (", ".join(f"{k}={v}" for k, v in outputs.items()) or "none"))
        return DeployResult(stack_name=run.name, stack_id=stack_id, outputs=outputs,
                            changed=True, message=f"{len(changes)} change(s)")

    def _settle(self, run: _Run, stack: dict[str, Any] | None) -> dict[str, Any] | None:
        """The stack once it can take a change set: someone else's operation waited for, a
        stack that never got created deleted (``None``), one stuck refused."""
        for _ in range(5):
            if stack is None:
                return None
            status = stack["StackStatus"]
            if _in_progress(status):
                stack = run.wait_until_settled(stack)
                continue
            if status in _STUCK:
                url = console_url(run.region, stack["StackId"])
                raise DeployError(
                    f"stack {run.name} in {run.region} is {status}: CloudFormation could not "
                    "roll back its last update, and it cannot be updated until it does",
                    details=f"stack status reason: {stack.get('StackStatusReason')}\n"
                            f"console: {url}",
                    hint=f"fix what blocked the rollback (see {url}), then run `aws "
                         f"cloudformation continue-update-rollback --stack-name {run.name} "
                         f"--region {run.region}` and deploy again")
            if status in _RECREATE:
                run.delete(stack, f"{status}: the stack was never created, creating it again")
                return None
            return stack
        return stack

    def _create_change_set(self, run: _Run, change_type: str, body: str,
                           parameters: Mapping[str, str], settings: StackSettings,
                           stack: dict[str, Any] | None) -> tuple[str, str, list[dict[str, Any]]]:
        """Create the change set (a unique name, addressed by its ARN from then on) and wait
        for it: its ARN, the stack's id and the changes; :class:`_NoChanges` when it is empty
        (and deleted)."""
        run.phase = "change set"
        run.report("change set", change_type.lower())
        args = self._change_set_args(run, change_type, body, parameters, settings)
        try:
            created = run.cfn.create_change_set(**args)
        except Exception as exc:
            # Some endpoints refuse an empty update outright instead of failing the change set.
            if stack is None or _code(exc) != "ValidationError" or not _empty(_message(exc)):
                raise
            run.log(f"no changes: {_message(exc)}")
            raise _NoChanges(stack["StackId"], stack) from None
        arn, stack_id = created["Id"], created["StackId"]
        run.log(f"change set {args['ChangeSetName']} ({change_type}): {arn}")

        def change_set_ready() -> Any:
            found = run.cfn.describe_change_set(ChangeSetName=arn)
            return found if found["Status"] in ("CREATE_COMPLETE", "FAILED") else None

        try:
            described = run.poll("the change set", change_set_ready)
        except _Cancelled:
            self._discard(run, arn, stack_id, change_type)
            raise
        if described["Status"] == "FAILED":
            reason = str(described.get("StatusReason", ""))
            self._discard(run, arn, stack_id, change_type)
            if _empty(reason):
                run.log("no changes: the change set was empty and is deleted")
                raise _NoChanges(stack_id, run.describe(stack_id) or {})
            raise DeployError(f"stack {run.name} in {run.region}: the change set failed: "
                              f"{reason}", details=f"change set: {arn}",
                              hint="fix the template or parameters and deploy again")
        changes = self._changes(run, arn, described)
        run.report("change set", f"{len(changes)} change(s)")
        if run.context.cancel.is_set():
            self._discard(run, arn, stack_id, change_type)
            raise _Cancelled()
        return arn, stack_id, changes

    def _execute_and_wait(self, run: _Run, arn: str, stack_id: str, change_type: str,
                          changes: int) -> dict[str, Any]:
        """Execute the change set and wait for the stack: the stack once it succeeded, a
        :class:`DeployError` naming the failed resources otherwise."""
        run.phase = "creating" if change_type == "CREATE" else "updating"
        run.report(run.phase, f"{changes} change(s)")
        run.mark_events_seen(stack_id)
        execute: dict[str, Any] = {"ChangeSetName": arn,
                                   "ClientRequestToken": f"mila-exec-{uuid.uuid4().hex[:16]}"}
        if run.context.options.get("disable_rollback"):
            execute["DisableRollback"] = True
            run.log("rollback disabled: a failure keeps the failed resources for debugging")
        run.cfn.execute_change_set(**execute)
        stack = self._wait_for_stack(run, stack_id)
        status = stack["StackStatus"]
        if status in _SUCCESS:
            return stack
        hint = ("fix the cause and deploy again" +
                (" (--disable-rollback keeps the failed resources for debugging)"
                 if "ROLLBACK" in status else
                 "; the failed resources were kept (--disable-rollback)"))
        if status == "UPDATE_ROLLBACK_FAILED":
            hint = (f"fix what blocked the rollback, then run `aws cloudformation "
                    f"continue-update-rollback --stack-name {run.name} --region "
                    f"{run.region}` and deploy again")
        raise run.failure(stack, "failed to " + ("create" if change_type == "CREATE"
                                                 else "update"), hint)

    def _change_set_args(self, run: _Run, change_type: str, body: str,
                         parameters: Mapping[str, str], settings: StackSettings,
                         prefix: str = "mila") -> dict[str, Any]:
        """``CreateChangeSet``'s arguments: a unique name, the body (through S3 when large)."""
        args: dict[str, Any] = {
            "StackName": run.name, "ChangeSetType": change_type,
            "ChangeSetName": f"{prefix}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}-"
                             f"{uuid.uuid4().hex[:8]}",
            "Capabilities": list(settings.capabilities),
            "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                           for k, v in sorted(parameters.items())],
            "Tags": self._tags(run, settings),
            "Description": f"mila {run.action.kind.value} of {run.action.service} "
                           f"({(run.action.checksum or '')[:12]})",
        }
        if len(body.encode("utf-8")) > MAX_TEMPLATE_BODY:
            identity = self.verify(run.region)
            store = self.store(run, getattr(identity, "account", None))
            key = store.put(body.encode("utf-8"), ".template", run.log)
            args["TemplateURL"] = store.https_url(key)
        else:
            args["TemplateBody"] = body
        return args

    def _changes(self, run: _Run, arn: str, described: dict[str, Any]) -> list[dict[str, Any]]:
        """Every change of the change set, written to the log."""
        changes = list(described.get("Changes", []))
        token = described.get("NextToken")
        while token:
            page = run.cfn.describe_change_set(ChangeSetName=arn, NextToken=token)
            changes.extend(page.get("Changes", []))
            token = page.get("NextToken")
        run.log(f"{len(changes)} change(s):")
        for change in changes:
            rc = change.get("ResourceChange", {})
            replacement = rc.get("Replacement")
            extra = f" (replacement: {replacement})" if rc.get("Action") == "Modify" \
                and replacement else ""
            run.log(f"  {rc.get('Action')} {rc.get('LogicalResourceId')} "
                    f"({rc.get('ResourceType')}){extra}")
        return changes

    def _discard(self, run: _Run, arn: str, stack_id: str, change_type: str) -> None:
        """Delete a change set that will not be executed (and the empty stack a CREATE change
        set made, so no REVIEW_IN_PROGRESS stack is left behind)."""
        try:
            run.cfn.delete_change_set(ChangeSetName=arn)
        except Exception as exc:
            run.log(f"could not delete change set {arn}: {_message(exc)}")
        if change_type == "CREATE":
            try:
                stack = run.describe(stack_id)
                if stack is not None and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
                    run.cfn.delete_stack(StackName=stack_id)
            except Exception as exc:
                run.log(f"could not delete the empty stack {stack_id}: {_message(exc)}")

    def _wait_for_stack(self, run: _Run, stack_id: str) -> dict[str, Any]:
        def finished() -> Any:
            found = run.describe(stack_id)
            run.stream_events(stack_id)
            if found is None:
                return {"StackId": stack_id, "StackStatus": "DELETE_COMPLETE"}
            return found if not found["StackStatus"].endswith("_IN_PROGRESS") else None

        try:
            return dict(run.poll("the stack operation", finished))
        except _Cancelled:
            found = run.describe(stack_id)
            if found is not None and found["StackStatus"] == "UPDATE_IN_PROGRESS":
                try:
                    run.cfn.cancel_update_stack(StackName=stack_id)
                    run.log(f"cancelled the update of {run.name}: CloudFormation rolls it back")
                except Exception as exc:
                    run.log(f"could not cancel the update: {_message(exc)}")
            raise

    def _protect(self, run: _Run, stack: Mapping[str, Any], settings: StackSettings) -> None:
        wanted = settings.termination_protection
        if wanted is None or not stack or bool(stack.get("EnableTerminationProtection")) == wanted:
            return
        run.cfn.update_termination_protection(EnableTerminationProtection=wanted,
                                              StackName=stack["StackId"])
        run.log(f"termination protection {'enabled' if wanted else 'disabled'}")

    # -- destroy

    def destroy(self, action: Action, context: DeployContext) -> DeployResult:
        name = self.stack_name_for(action, context)
        run = _Run(self, action, context, name)
        run.log(f"{self.name}: destroying stack {name} in {context.region}")
        with translated(name, context.region,
                        f"cancelled while deleting stack {name} in {context.region}; "
                        "CloudFormation goes on deleting it"):
            self.verify(context.region)
            stack = run.describe()
            if stack is not None and _in_progress(stack["StackStatus"]) \
                    and stack["StackStatus"] != "DELETE_IN_PROGRESS":
                stack = run.wait_until_settled(stack)
            if stack is None:
                run.log(f"stack {name} does not exist: nothing to destroy")
                return DeployResult(stack_name=name, changed=False, message="already gone")
            if stack.get("EnableTerminationProtection"):
                raise DeployError(
                    f"stack {name} in {context.region} has termination protection enabled; "
                    "mila does not remove it",
                    hint=f"set termination_protection = false and deploy, or run `aws "
                         f"cloudformation update-termination-protection "
                         f"--no-enable-termination-protection --stack-name {name} --region "
                         f"{context.region}`, then destroy again")
            run.delete(stack, "destroy")
            return DeployResult(stack_name=name, stack_id=stack["StackId"], changed=True,
                                message="deleted")


def parameter_problems(template: Template, values: Mapping[str, str],
                       ws: Workspace) -> list[tuple[str, str]]:
    """``(message, hint)`` for parameters set but not declared in the template, and for
    template parameters with neither a default nor a value."""
    where = ws.config_file or f"{ws.path}/mila.toml"
    problems = []
    unknown = sorted(set(values) - set(template.parameters))
    if unknown:
        declared = ", ".join(sorted(template.parameters)) or "none"
        problems.append((f"{template.shown}: parameters {', '.join(unknown)} are set in "
                         f"{where} but not declared in the template",
                         f"the template declares: {declared}"))
    missing = sorted(name for name, spec in template.parameters.items()
                     if name not in values and not (isinstance(spec, dict) and "Default" in spec))
    if missing:
        problems.append((f"{template.shown}: parameters {', '.join(missing)} have no default "
                         "and no value", f"set them in [service].parameters of {where}"))
    return problems


def _resource_change(change: Mapping[str, Any]) -> ResourceChange:
    rc = change.get("ResourceChange") or {}
    names = [d.get("Target", {}).get("Name") for d in rc.get("Details") or []
             if d.get("Target", {}).get("Attribute") == "Properties"]
    return ResourceChange(str(rc.get("Action", "")), str(rc.get("LogicalResourceId", "")),
                          str(rc.get("ResourceType", "")),
                          str(rc["Replacement"]) if rc.get("Replacement") else None,
                          tuple(sorted({n for n in names if n})))


def _outputs(stack: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", []) or []}

