"""Running the Node.js command-line tools of the framework deployers (``osls`` for ``serverless``,
``cdk`` for ``cdk``): finding them, running them in a worker thread, reading their versions.

Not a plugin (it registers nothing): a small library the ``mila_serverless`` and ``mila_cdk``
plugins share. A tool is looked for, in order, in ``node_modules/.bin`` of the service's folder
and of each folder above it up to the project root (a service's own ``package.json``, or the
monorepo's hoisted one), then on ``PATH`` (a global install); else ``npx`` runs the npm package.
Node.js itself must be on ``PATH``: when it (or npm, for ``npx``) is missing, the error names what
is missing and how to install it — at plan time (:func:`tool_findings`, the deployers'
``validate``: exit 2 before any lock), and again before any call to AWS.

A tool's output goes to the action's log; when it fails, the error is the tool's own message
(its last lines, colours removed), never a Python traceback. ``context.cancel`` (Ctrl-C) stops
the tool.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mila.errors import DeployError, MilaError
from mila.model import Finding, Workspace

if TYPE_CHECKING:
    from mila.protocols import DeployContext

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml")
#: how many of the tool's last lines a failure shows
ERROR_LINES = 25


@dataclass(frozen=True, slots=True)
class Tool:
    """A Node.js tool: the names of its executable and of the npm package that provides it."""

    executables: tuple[str, ...]  # e.g. ("osls", "serverless", "sls")
    package: str  # the npm package npx runs when no executable is found
    deployer: str  # for messages: the deployer that needs it


def find_executable(tool: Tool, folder: Path, root: Path) -> list[str]:
    """The command that runs ``tool`` for a service in ``folder`` (absolute) under ``root``."""
    if shutil.which("node") is None:
        raise DeployError(
            f"the {tool.deployer} deployer needs Node.js, and `node` is not on PATH",
            hint=f"install Node.js 18 or later (https://nodejs.org), then `npm install "
                 f"--save-dev {tool.package}` in the service's folder or the repository root")
    here = folder.resolve()
    top = root.resolve()
    while True:
        for name in tool.executables:
            candidate = here / "node_modules" / ".bin" / name
            if candidate.is_file():
                return [str(candidate)]
        if here == top or here.parent == here or top not in here.parents:
            break
        here = here.parent
    for name in tool.executables:
        found = shutil.which(name)
        if found:
            return [found]
    if shutil.which("npx") is None:
        raise DeployError(
            f"the {tool.deployer} deployer found no {tool.package} installed "
            f"(looked for {', '.join(tool.executables)} in node_modules/.bin from "
            f"{folder} up to the project root, and on PATH), and `npx` (npm) is not on PATH",
            hint=f"`npm install --save-dev {tool.package}` in the service's folder or the "
                 "repository root (install npm with Node.js if it is missing)")
    return ["npx", "--yes", tool.package]


def tool_findings(tool: Tool, folder: Path, root: Path, where: str) -> list[Finding]:
    """Plan-time check (``validate``): Node.js and the tool can be found — no process is run,
    no cloud call made. A problem is one error finding (the plan is refused, exit 2)."""
    try:
        find_executable(tool, folder, root)
    except DeployError as exc:
        return [Finding(f"{exc.message} ({exc.hint})" if exc.hint else exc.message, file=where,
                        rule=f"{tool.deployer}-tool")]
    return []


def service_findings(tool: Tool, context: DeployContext,
                     check_settings: Callable[[Workspace], object]) -> list[Finding]:
    """A front-end deployer's ``validate``: its ``[service]`` keys (``check_settings`` raises
    a :class:`MilaError`) and :func:`tool_findings`. No process is run, no cloud call made."""
    ws = context.workspace
    if ws is None:
        return []
    try:
        check_settings(ws)
    except MilaError as exc:
        return [Finding(str(exc))]
    return tool_findings(tool, context.root / ws.path, context.root, ws.path)


def run_tool(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: TextIO | None,
             cancel: threading.Event, what: str, timeout: float = 900.0) -> str:
    """Run ``command`` and return its output (stdout and stderr, merged); its output is copied
    to ``log``. Fails with a :class:`DeployError` carrying the tool's own last lines."""
    if log is not None:
        log.write(f"$ {' '.join(command)}  (in {cwd})\n")
        log.flush()
    try:
        proc = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DeployError(f"{what}: cannot run {command[0]}: {exc.strerror}") from None
    lines: list[str] = []
    reader = threading.Thread(target=_copy, args=(proc, lines, log), daemon=True)
    reader.start()
    waited = 0.0
    while proc.poll() is None:
        if cancel.wait(0.2):
            proc.kill()
            proc.wait()
            raise DeployError(f"{what}: cancelled")
        waited += 0.2
        if waited > timeout:
            proc.kill()
            proc.wait()
            raise DeployError(f"{what}: timed out after {timeout:.0f}s")
    reader.join()
    output = "".join(lines)
    if proc.returncode != 0:
        tail = [line for line in output.splitlines() if line.strip()][-ERROR_LINES:]
        raise DeployError(f"{what} failed (exit {proc.returncode}):\n  " + "\n  ".join(tail),
                          hint="fix the error reported above (the full output is in the "
                               "action's log)")
    return output


def _copy(proc: subprocess.Popen[str], lines: list[str], log: TextIO | None) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        clean = _ANSI.sub("", line)
        lines.append(clean)
        if log is not None:
            log.write(clean)
            log.flush()


def plain_variables(variables: Mapping[str, str], resolved: Mapping[str, Any]) -> dict[str, str]:
    """The service's environment variables a framework may see while it synthesizes: all but
    those holding a secret or a SecureString (those reach the Lambda functions as
    CloudFormation dynamic references, never a template written on disk)."""
    return {name: variables[name] for name in variables
            if not getattr(resolved.get(name), "secure", False)}


def tool_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The process environment for a tool: this one (credentials, ``AWS_ENDPOINT_URL``…), no
    colours or prompts, plus ``extra``."""
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "FORCE_COLOR": "0", "CI": env.get("CI", "1")})
    env.update(extra)
    return env


def lock_files(folder: Path, root: Path) -> list[Path]:
    """The npm lock files (``package-lock.json``, ``npm-shrinkwrap.json``, ``yarn.lock``,
    ``pnpm-lock.yaml``) from ``folder`` up to ``root``: what pins a tool's version for a
    service. Cheap: a few ``stat`` calls."""
    found: list[Path] = []
    here, top = folder.resolve(), root.resolve()
    while True:
        found += [here / n for n in LOCK_FILES if (here / n).is_file()]
        if here == top or here.parent == here or top not in here.parents:
            return found
        here = here.parent


def installed_version(folder: Path, root: Path, package: str) -> str | None:
    """The version of the npm ``package`` a service in ``folder`` runs (its
    ``node_modules/<package>/package.json``, from ``folder`` up to ``root``)."""
    here, top = folder.resolve(), root.resolve()
    while True:
        manifest = here / "node_modules" / package / "package.json"
        if manifest.is_file():
            try:
                return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
            except (OSError, ValueError, KeyError):
                return None
        if here == top or here.parent == here or top not in here.parents:
            return None
        here = here.parent
