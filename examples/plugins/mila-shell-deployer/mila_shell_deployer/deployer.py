"""The ``shell`` deployer: runs the commands a service configures, for teams whose services are
deployed by the Serverless Framework, CDK, Terraform or a script.

``[service]`` keys (besides mila's own)::

    deploy = "npx serverless deploy --stage ${env} --region ${region}"   # required to deploy
    destroy = "npx serverless remove --stage ${env} --region ${region}"  # required to destroy

A command runs with ``sh -c`` in the service's folder, with:

* in the command text: ``${env}``, ``${region}``, ``${service}``, ``${stack_name}`` and
  ``${<dependency>.<Output>}`` replaced; any other ``${...}`` is left to the shell
  (``${HOME}`` works);
* in its environment, on top of mila's: every variable of the service's environment files
  (``envs/.env*``, resolved in the action's region: ``DeployContext.variables``), ``MILA_ENV``,
  ``MILA_REGION``, ``MILA_SERVICE``, ``MILA_STACK_NAME``, ``MILA_PROJECT``, ``MILA_ROOT`` (the
  project's folder, absolute), ``AWS_REGION``/``AWS_DEFAULT_REGION`` (the action's region),
  each resolved ``[service].parameters`` entry as ``MILA_PARAM_<NAME>``, and each output of
  each dependency as ``MILA_OUTPUT_<SERVICE>_<NAME>`` (upper case, anything but letters and
  digits turned into ``_``).

Every line the command prints (stdout and stderr) goes to the action's log, and the last one to
the progress line. A line ``::output Name=Value`` declares an output of the service: recorded in
the state, shown by ``mila envs describe``, and given to the services that depend on it. A
non-zero exit is a failure showing the last lines; Ctrl-C (``context.cancel``) terminates the
command's process group; the service's ``timeout`` (minutes) bounds it.

A deploy keeps the service's ``destroy`` command (unexpanded) and timeout in
``DeployResult.data``; mila stores them with the record and hands them back as
``context.data``. So a service whose folder was deleted is still destroyed: its recorded
command runs in the project's root (``MILA_ROOT``), as the folder is gone; write paths in a
``destroy`` command from ``$MILA_ROOT`` if it must work then.

It implements neither optional member of the deployer protocol: no ``validate`` (a command
cannot be checked without running it) and no ``describe_changes`` (what it changes is known
only once it has run), so ``mila diff`` shows "no resource diff" for its services.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from mila.errors import ConfigError, DeployError
from mila.model import Action, DeployResult
from mila.protocols import DeployContext
from mila_shell_deployer import __version__

CONFIG_KEYS = frozenset({"deploy", "destroy"})
OUTPUT_LINE = re.compile(r"^::output\s+([A-Za-z][A-Za-z0-9_]*)=(.*)$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
LAST_LINES = 10
#: Seconds between SIGTERM and SIGKILL when a command is cancelled or times out.
KILL_GRACE = 5.0


def env_name(*parts: str) -> str:
    """``("shared", "TopicArn")`` → ``SHARED_TOPICARN``."""
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", p).upper() for p in parts)


def stack_name(project: str, service: str, environment: str) -> str:
    """The name a shell service is known by (the same shape as mila's CloudFormation stacks)."""
    return f"{project}-{service}-{environment}"


def expand(command: str, values: Mapping[str, str],
           outputs: Mapping[str, Mapping[str, str]]) -> str:
    """Replace the placeholders mila knows; leave every other ``${...}`` to the shell."""

    def repl(m: re.Match[str]) -> str:
        token = m.group(1)
        if token in values:
            return values[token]
        if "." in token:
            service, name = token.split(".", 1)
            if service in outputs:
                if name not in outputs[service]:
                    known = ", ".join(sorted(outputs[service])) or "none"
                    raise ConfigError(f"'${{{token}}}': '{service}' has no output '{name}'",
                                      hint=f"its outputs are: {known}")
                return str(outputs[service][name])
        return m.group(0)

    return _PLACEHOLDER.sub(repl, command)


class ShellDeployer:
    """:class:`mila.protocols.Deployer` running ``[service].deploy`` / ``[service].destroy``."""

    name = "shell"
    version = __version__

    def __init__(self, project: str) -> None:
        self.project = project

    def deploy(self, action: Action, context: DeployContext) -> DeployResult:
        return self._run("deploy", action, context)

    def destroy(self, action: Action, context: DeployContext) -> DeployResult:
        return self._run("destroy", action, context)

    # ------------------------------------------------------------------ running

    def _run(self, key: str, action: Action, context: DeployContext) -> DeployResult:
        command, cwd, timeout = self._command(key, action, context)
        name = action.stack_name or stack_name(self.project, action.service, action.environment)
        values = {"env": action.environment, "region": action.region,
                  "service": action.service, "stack_name": name}
        text = expand(command, values, context.dependency_outputs)
        env = self._environment(action, context, name)
        outputs, last = self._execute(text, cwd, env, context, timeout=timeout)
        workspace = context.workspace
        data = {} if workspace is None else {
            "destroy": workspace.settings.get("destroy"),
            "timeout_minutes": workspace.timeout_minutes}
        return DeployResult(stack_name=name, outputs=outputs,
                            message=last[-1][:200] if last else "", data=data)

    def _command(self, key: str, action: Action,
                 context: DeployContext) -> tuple[str, Path, float]:
        """The command to run, its folder and timeout (seconds): from the service's
        ``mila.toml``, or for a destroy whose folder is gone, from the record's data."""
        workspace = context.workspace
        if workspace is None:  # destroying a service whose folder is gone
            recorded = context.data.get("destroy")
            if not isinstance(recorded, str) or not recorded.strip():
                raise DeployError(f"the folder of '{action.service}' is gone and its record "
                                  f"keeps no `{key}` command (it was deployed by an older "
                                  "shell deployer or without one)",
                                  hint="restore the folder (with its mila.toml) to destroy it, "
                                       "then delete it again")
            return recorded, context.root, float(context.data.get("timeout_minutes") or 60) * 60
        command = workspace.settings.get(key)
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f"service '{workspace.name}' uses the shell deployer but has no "
                              f"`{key}` command", file=workspace.config_file,
                              key=f"service.{key}",
                              hint=f'add {key} = "..." to its [service] table')
        return command, context.root / workspace.path, workspace.timeout_minutes * 60

    def _environment(self, action: Action, context: DeployContext, name: str) -> dict[str, str]:
        env = dict(os.environ)
        # the service's environment files (values resolved in this region, secrets included)
        env.update(context.variables)
        env.update({"MILA_PROJECT": self.project, "MILA_ROOT": str(context.root.resolve()),
                    "MILA_ENV": action.environment,
                    "MILA_REGION": action.region, "MILA_SERVICE": action.service,
                    "MILA_STACK_NAME": name, "MILA_ACTION": action.kind.value,
                    "AWS_REGION": action.region, "AWS_DEFAULT_REGION": action.region})
        for param, value in context.parameters.items():
            env[f"MILA_PARAM_{env_name(param)}"] = str(value)
        for service, outputs in context.dependency_outputs.items():
            for output, value in outputs.items():
                env[f"MILA_OUTPUT_{env_name(service, output)}"] = str(value)
        return env

    def _execute(self, command: str, cwd: Path, env: dict[str, str], context: DeployContext,
                 timeout: float) -> tuple[dict[str, str], list[str]]:
        log = context.log
        if log is not None:
            log.write(f"$ {command}\n")
            log.flush()
        context.report("running", command[:80])
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    start_new_session=True)  # its own group: stop it whole
        except OSError as exc:
            raise DeployError(f"cannot run `{command}`: {exc.strerror}") from None
        stopped: list[str] = []
        done = threading.Event()

        def watch() -> None:
            """Stop the command on Ctrl-C or when the service's timeout runs out."""
            deadline = time.monotonic() + timeout
            while not done.wait(0.1):
                reason = "cancelled" if context.cancel.is_set() else \
                    "timed out" if time.monotonic() > deadline else None
                if reason:
                    stopped.append(reason)
                    _terminate(proc)
                    return

        watcher = threading.Thread(target=watch, name="shell-deployer-watch", daemon=True)
        watcher.start()
        outputs: dict[str, str] = {}
        last: deque[str] = deque(maxlen=LAST_LINES)
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                if log is not None:
                    log.write(line + "\n")
                    log.flush()
                match = OUTPUT_LINE.match(line)
                if match:
                    outputs[match.group(1)] = match.group(2).strip()
                    continue
                if line.strip():
                    last.append(line)
                    context.report("running", line.strip()[:80])
            code = proc.wait()
        finally:
            done.set()
            watcher.join()
        if stopped:
            raise DeployError(f"`{command}` {stopped[0]}", details="\n".join(last))
        if code != 0:
            tail = "\n".join(f"  {line}" for line in last) or "  (no output)"
            raise DeployError(f"`{command}` exited with code {code}; last lines:\n{tail}")
        return outputs, list(last)


def _terminate(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the command's process group, then SIGKILL it if it does not stop."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(KILL_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
