"""A deployer plugin for tests: "stacks" are JSON files under ``<root>/.fake-cloud/``.

Registered through ``MILA_PLUGINS=mila_fake_deployer`` (``tests/support`` is on sys.path), the
way a user adds a local plugin module. Service keys: ``fail = true`` (or a file ``FAIL`` in the
workspace) makes deploys fail; ``sleep = seconds`` slows them (``MILA_FAKE_SLEEP`` overrides
it, without changing the checksum: a rerun of a killed run can be quick); ``warn = "text"``
logs a warning. Outputs: ``Url``, ``Param<name>`` for each parameter, and with ``ids = true`` an
``Id`` (new each time the stack is created, kept by updates, like a physical id). It has a
build phase: a file ``BUILD_FAIL`` in the workspace makes the build fail; each build is
appended to ``.fake-cloud/builds.jsonl``. Every call is appended to
``.fake-cloud/calls.jsonl`` with start/end times, so tests can check order and concurrency.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

from mila import hookimpl
from mila.errors import DeployError
from mila.model import Action, DeployResult, Workspace
from mila.protocols import BuildContext, DeployContext, DeployerType

_lock = threading.Lock()


def cloud(root: Path) -> Path:
    return root / ".fake-cloud"


def stack_file(root: Path, region: str, stack: str) -> Path:
    return cloud(root) / region / f"{stack}.json"


def builds(root: Path) -> list[dict]:
    path = cloud(root) / "builds.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calls(root: Path) -> list[dict]:
    path = cloud(root) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class FakeDeployer:
    name = "fake"
    version = "1"

    def _record(self, context: DeployContext, entry: dict) -> None:
        with _lock:
            path = cloud(context.root) / "calls.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps({**entry, "pid": os.getpid()}) + "\n")

    def build(self, workspace: Workspace, context: BuildContext) -> None:
        if (context.root / workspace.path / "BUILD_FAIL").exists():
            raise DeployError(f"{workspace.name} failed to build", details="fake build log line")
        with _lock:
            path = cloud(context.root) / "builds.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps({"service": workspace.name,
                                    "packages": dict(context.packages)}) + "\n")

    def deploy(self, action: Action, context: DeployContext) -> DeployResult:
        ws = context.workspace
        assert ws is not None
        start = time.time()
        context.report("deploying", f"{action.service} to {action.region}")
        if ws.settings.get("warn"):  # a log line while the progress view is live
            from mila.logs import get_logger

            get_logger("fake").warning(str(ws.settings["warn"]))
        sleep = os.environ.get("MILA_FAKE_SLEEP") or ws.settings.get("sleep", 0)
        if context.cancel.wait(float(sleep)):
            raise DeployError("cancelled by the user")
        stack = f"{context.project}-{action.service}-{action.environment}"
        if ws.settings.get("fail") or (context.root / ws.path / "FAIL").exists():
            self._record(context, {"op": "deploy", "service": action.service, "region": action.region,
                                   "start": start, "end": time.time(), "ok": False})
            raise DeployError(f"{action.service} refused to deploy", details="fake failure log line")
        path = stack_file(context.root, action.region, stack)
        # like a physical id: kept by updates, new when the stack is created again
        previous = json.loads(path.read_text())["outputs"].get("Id") if path.exists() else None
        outputs = {"Url": f"https://{action.service}.{action.region}.example",
                   **({"Id": previous or uuid.uuid4().hex} if ws.settings.get("ids") else {}),
                   **{f"Param{k}": v for k, v in context.parameters.items()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"checksum": action.checksum, "outputs": outputs}))
        if context.log:
            context.log.write(f"deployed {stack}\n")
        self._record(context, {"op": "deploy", "service": action.service, "region": action.region,
                               "start": start, "end": time.time(), "ok": True,
                               "dependency_outputs": {k: dict(v) for k, v in
                                                      context.dependency_outputs.items()},
                               "variables": dict(context.variables)})
        return DeployResult(stack_name=stack, outputs=outputs)

    def destroy(self, action: Action, context: DeployContext) -> DeployResult:
        start = time.time()
        # None after a failed first deploy: derive it as deploy() did (the Deployer contract)
        stack = action.stack_name or f"{context.project}-{action.service}-{action.environment}"
        stack_file(context.root, action.region, stack).unlink(missing_ok=True)
        self._record(context, {"op": "destroy", "service": action.service, "region": action.region,
                               "start": start, "end": time.time(), "ok": True})
        return DeployResult(stack_name=stack)


@hookimpl
def mila_deployers() -> list[DeployerType]:
    return [DeployerType("fake", create=lambda config: FakeDeployer(), version="1",
                         config_keys=frozenset({"fail", "sleep", "warn", "ids"}))]
