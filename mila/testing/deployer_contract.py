"""The :class:`~mila.protocols.Deployer` contract, written once as pytest tests.

A deployer (built-in or third-party) proves it keeps the contract by subclassing
:class:`DeployerContract` in a module pytest collects and overriding three things:

``deployer`` (fixture)
    A deployer instance, pointed at whatever it deploys to (for AWS: the ``sandbox`` fixture).
``service_files(version)``
    The files of one small service for this deployer, relative to the service folder; the
    deployed thing must differ between ``version=1`` and ``version=2`` (an output, a file).
``exists(stack_name, region, root)``
    Whether the stack (or whatever the deployer creates) exists now.

Optional: ``invalid_service_files()`` (files the deployer's ``validate`` must refuse, for a
deployer that has ``validate``), ``settings`` (the service's ``[service]`` table, e.g.
``{"deployer": "zip"}``),
``region``, ``cancel_grace_seconds``, and ``destroys_without_folder = False`` for a deployer
that cannot destroy a service whose folder is gone (``context.workspace`` is ``None``; say so
in its docs)::

    from mila.testing.deployer_contract import DeployerContract

    class TestZipDeployer(DeployerContract):
        settings = {"deployer": "zip"}

        @pytest.fixture
        def deployer(self, sandbox):
            return ZipDeployer(bucket="artifacts")

        def service_files(self, version):
            return {"handler.py": f"VERSION = {version}\\n"}

        def exists(self, stack_name, region, root):
            ...

What it checks: a deploy returns a stack name, string outputs and storable ``data`` (a small
JSON mapping, handed back as ``context.data`` to the next deploy and the destroy); deploying
the same code twice succeeds with the same stack and outputs (idempotent); a changed service
redeploys; a destroy removes the stack and returns empty outputs, with the service's folder
there (``mila remove``) and gone (its folder deleted from disk; only ``context.data`` is left);
destroying what is already gone succeeds; a destroy after a failed first create
(``action.stack_name`` is ``None``) finds the stack by the name ``deploy`` derives; a deploy
whose ``context.cancel`` is set stops within the grace period and a later deploy still works;
progress goes through ``context.report`` and ``context.log``, never to stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mila.errors import MilaError
from mila.model import (
    Action,
    ActionKind,
    DeployResult,
    Environment,
    Finding,
    ResourceChange,
    Workspace,
    WorkspaceKind,
    frozen_mapping,
)
from mila.protocols import DeployContext, Deployer
from mila.runner import check_deployer_data
from mila.state_json import plain

__all__ = ["DeployerContract"]


class DeployerContract:
    """Subclass, override ``deployer``, ``service_files`` and ``exists`` (see the module)."""

    project_name = "contract"
    service = "svc"
    environment = Environment("ct", ("eu-west-1", "us-east-1"))
    region = "eu-west-1"
    settings: Mapping[str, Any] = {}
    cancel_grace_seconds = 30.0
    destroys_without_folder = True
    #: the ``DeployResult.data`` of the last successful deploy, as the record would keep it
    recorded_data: Mapping[str, Any] = frozen_mapping()

    # ---------------------------------------------------------------- to override

    @pytest.fixture
    def deployer(self) -> Deployer:
        raise NotImplementedError("override the `deployer` fixture")

    def service_files(self, version: int) -> Mapping[str, str]:
        raise NotImplementedError("override service_files(version)")

    def exists(self, stack_name: str, region: str, root: Path) -> bool:
        raise NotImplementedError("override exists(stack_name, region, root)")

    def invalid_service_files(self) -> Mapping[str, str] | None:
        """Files ``validate`` must refuse (``None``: not checked)."""
        return None

    # ---------------------------------------------------------------- harness

    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        root = tmp_path / "repo"
        root.mkdir()
        return root

    def write_service(self, root: Path, version: int) -> Workspace:
        folder = root / "services" / self.service
        for rel, content in self.service_files(version).items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content))
        return Workspace(name=self.service, path=f"services/{self.service}", kind=WorkspaceKind.SERVICE,
                         deployer=str(self.settings.get("deployer", "")) or None,
                         settings=frozen_mapping(dict(self.settings)),
                         config_file=f"services/{self.service}/mila.toml")

    def context(self, root: Path, workspace: Workspace | None,
                cancel: threading.Event | None = None,
                reports: list[tuple[str, str]] | None = None) -> DeployContext:
        sink = reports if reports is not None else []

        def report(phase: str, message: str = "") -> None:
            sink.append((phase, message))

        return DeployContext(project=self.project_name, environment=self.environment,
                             region=self.region, workspace=workspace, root=root, report=report,
                             log=io.StringIO(), cancel=cancel or threading.Event(),
                             data=frozen_mapping(self.recorded_data))

    def deploy(self, deployer: Deployer, root: Path, version: int, checksum: str,
               **context: Any) -> DeployResult:
        ws = self.write_service(root, version)
        action = Action(self.environment.name, self.service, self.region, ActionKind.DEPLOY,
                        checksum, None, deployer.name)
        result = deployer.deploy(action, self.context(root, ws, **context))
        check_deployer_data(deployer.name, result.data)  # storable: a small JSON mapping
        self.recorded_data = json.loads(json.dumps(plain(result.data)))  # as a backend reads it
        return result

    def destroy(self, deployer: Deployer, root: Path, stack_name: str | None,
                folder_gone: bool = False) -> DeployResult:
        """Destroy as ``mila remove`` does (the workspace given), or as after the service's
        folder was deleted (it is removed from disk; ``context.workspace`` is ``None``). The
        context carries the data of the last deploy, as mila hands a record's back; none when
        ``stack_name`` is ``None`` (no deploy ever succeeded)."""
        if folder_gone:
            shutil.rmtree(root / "services" / self.service, ignore_errors=True)
        ws = None if folder_gone else self.write_service(root, 1)
        if stack_name is None:
            self.recorded_data = frozen_mapping()
        action = Action(self.environment.name, self.service, self.region, ActionKind.DESTROY,
                        None, "c1", deployer.name, stack_name=stack_name)
        return deployer.destroy(action, self.context(root, ws))

    # ---------------------------------------------------------------- the contract

    def test_declares_name_and_version(self, deployer: Deployer) -> None:
        assert isinstance(deployer.name, str) and deployer.name
        assert isinstance(deployer.version, str) and deployer.version

    def test_deploy_returns_stack_name_and_string_outputs(self, deployer: Deployer, root: Path) -> None:
        result = self.deploy(deployer, root, 1, "c1")
        assert isinstance(result, DeployResult)
        assert result.stack_name, "a deploy must say which stack it made (destroy needs it)"
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.outputs.items())
        assert self.exists(result.stack_name, self.region, root)

    def test_same_code_twice_is_idempotent(self, deployer: Deployer, root: Path) -> None:
        first = self.deploy(deployer, root, 1, "c1")
        again = self.deploy(deployer, root, 1, "c1")
        assert again.stack_name == first.stack_name
        assert dict(again.outputs) == dict(first.outputs)

    def test_changed_code_redeploys_the_same_stack(self, deployer: Deployer, root: Path) -> None:
        first = self.deploy(deployer, root, 1, "c1")
        second = self.deploy(deployer, root, 2, "c2")
        assert second.stack_name == first.stack_name
        assert second.changed
        assert self.exists(second.stack_name or "", self.region, root)

    def test_destroy_removes_it_and_has_no_outputs(self, deployer: Deployer, root: Path) -> None:
        deployed = self.deploy(deployer, root, 1, "c1")
        result = self.destroy(deployer, root, deployed.stack_name)
        assert dict(result.outputs) == {}, "a destroy's outputs are {} (the record goes away)"
        assert not self.exists(deployed.stack_name or "", self.region, root)

    def test_destroy_after_the_folder_is_gone(self, deployer: Deployer, root: Path) -> None:
        if not self.destroys_without_folder:
            pytest.skip("this deployer documents that it needs the service's folder to destroy")
        deployed = self.deploy(deployer, root, 1, "c1")
        result = self.destroy(deployer, root, deployed.stack_name, folder_gone=True)
        assert dict(result.outputs) == {}
        assert not self.exists(deployed.stack_name or "", self.region, root)

    def test_destroying_what_is_gone_succeeds(self, deployer: Deployer, root: Path) -> None:
        deployed = self.deploy(deployer, root, 1, "c1")
        self.destroy(deployer, root, deployed.stack_name)
        self.destroy(deployer, root, deployed.stack_name)  # already gone: success, no error
        assert not self.exists(deployed.stack_name or "", self.region, root)

    def test_destroy_without_a_recorded_stack_name_derives_it(self, deployer: Deployer,
                                                              root: Path) -> None:
        deployed = self.deploy(deployer, root, 1, "c1")
        self.destroy(deployer, root, None)  # a record from a failed first create has no name
        assert not self.exists(deployed.stack_name or "", self.region, root)

    def test_cancelled_deploy_stops_and_a_later_deploy_works(self, deployer: Deployer,
                                                             root: Path) -> None:
        cancel = threading.Event()
        cancel.set()
        started = time.monotonic()
        # stopping with a MilaError (DeployError) is the expected way to give up
        with contextlib.suppress(MilaError):
            self.deploy(deployer, root, 1, "c1", cancel=cancel)
        assert time.monotonic() - started < self.cancel_grace_seconds
        result = self.deploy(deployer, root, 1, "c1")
        assert self.exists(result.stack_name or "", self.region, root)

    def test_reports_progress_and_never_prints(self, deployer: Deployer, root: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
        reports: list[tuple[str, str]] = []
        self.deploy(deployer, root, 1, "c1", reports=reports)
        out, _ = capfd.readouterr()
        assert out == "", f"a deployer never prints (use context.report/context.log): {out!r}"
        assert all(isinstance(p, str) and isinstance(m, str) for p, m in reports)

    # ---------------------------------------------------------------- optional members

    def _action(self, deployer: Deployer, kind: ActionKind, checksum: str) -> Action:
        return Action(self.environment.name, self.service, self.region, kind, checksum, None,
                      deployer.name)

    def test_validate_accepts_the_service_and_refuses_an_invalid_one(self, deployer: Deployer,
                                                                       root: Path) -> None:
        validate = getattr(deployer, "validate", None)
        if validate is None:
            pytest.skip("this deployer has no validate")
        ws = self.write_service(root, 1)
        action = self._action(deployer, ActionKind.FIRST_DEPLOY, "c1")
        findings = list(validate(action, self.context(root, ws)))
        assert all(isinstance(f, Finding) for f in findings)
        assert [f for f in findings if f.severity == "error"] == [], findings
        invalid = self.invalid_service_files()
        if invalid is None:
            return
        folder = root / "services" / self.service
        for rel, content in invalid.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(textwrap.dedent(content))
        try:
            findings = list(validate(action, self.context(root, ws)))
        except MilaError:
            return  # one error, raised: as good as a Finding
        assert any(f.severity == "error" for f in findings), findings

    def test_describe_changes_reports_an_edit_and_changes_nothing(self, deployer: Deployer,
                                                                  root: Path) -> None:
        describe = getattr(deployer, "describe_changes", None)
        if describe is None:
            pytest.skip("this deployer has no describe_changes")
        first = self.deploy(deployer, root, 1, "c1")
        ws = self.write_service(root, 2)
        changes = list(describe(self._action(deployer, ActionKind.DEPLOY, "c2"),
                                self.context(root, ws)))
        assert changes, "an edited service has at least one resource change"
        assert all(isinstance(c, ResourceChange) for c in changes)
        assert self.deploy(deployer, root, 2, "c2").changed, "describing changed nothing"
        assert self.exists(first.stack_name or "", self.region, root)
