"""Stack states the sandbox cannot put a stack in on demand (another actor's update in
progress, UPDATE_ROLLBACK_FAILED, termination protection, Ctrl-C during an update, a
timeout): the deployer against a scripted CloudFormation client that answers as AWS does."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mila_cloudformation.deployer import StackDeployer

from mila.errors import DeployError
from mila.model import Action, ActionKind, Environment, Identity, Workspace, frozen_mapping
from mila.protocols import DeployContext

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-api-dev/1111"
CHANGE_SET = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/mila-x/2222"
TEMPLATE = "Resources:\n  T:\n    Type: AWS::SNS::Topic\n"


class ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.response = {"Error": {"Code": code, "Message": message}}


class ScriptedCloudFormation:
    """``statuses`` are what successive describe_stacks calls see (the last one repeats;
    ``None`` = no stack); ``on_execute`` replaces them when the change set is executed."""

    def __init__(self, statuses: list[str | None], *, protected: bool = False,
                 change_set: tuple[str, str] = ("CREATE_COMPLETE", ""),
                 on_execute: list[str | None] | None = None,
                 events_on_execute: list[dict[str, Any]] | None = None) -> None:
        self.statuses = list(statuses)
        self.protected = protected
        self.change_set = change_set
        self.on_execute = on_execute
        self.events: list[dict[str, Any]] = [self._event("shop-api-dev", "AWS::CloudFormation::Stack",
                                                         "CREATE_COMPLETE")]
        self.events_on_execute = events_on_execute or []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hook: Callable[[str], None] = lambda name: None

    @staticmethod
    def _event(logical: str, type_: str, status: str, reason: str = "") -> dict[str, Any]:
        return {"EventId": f"{logical}-{status}-{reason}", "LogicalResourceId": logical,
                "ResourceType": type_, "ResourceStatus": status, "ResourceStatusReason": reason}

    def _call(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        self.hook(name)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self._call("describe_stacks", StackName=StackName)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status is None:
            raise ClientError("ValidationError", f"Stack with id {StackName} does not exist")
        return {"Stacks": [{"StackName": "shop-api-dev", "StackId": STACK_ID,
                            "StackStatus": status, "StackStatusReason": "reason",
                            "EnableTerminationProtection": self.protected,
                            "Outputs": [{"OutputKey": "Out", "OutputValue": "v"}]}]}

    def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
        self._call("describe_stack_events", StackName=StackName)
        return {"StackEvents": list(reversed(self.events))}

    def create_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self._call("create_change_set", **kwargs)
        return {"Id": CHANGE_SET, "StackId": STACK_ID}

    def describe_change_set(self, ChangeSetName: str, NextToken: str | None = None) -> dict[str, Any]:
        self._call("describe_change_set", ChangeSetName=ChangeSetName)
        status, reason = self.change_set
        return {"Status": status, "StatusReason": reason, "ExecutionStatus": "AVAILABLE",
                "Changes": [{"Type": "Resource", "ResourceChange": {
                    "Action": "Modify", "LogicalResourceId": "T", "ResourceType": "AWS::SNS::Topic",
                    "Replacement": "False"}}]}

    def execute_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self._call("execute_change_set", **kwargs)
        if self.on_execute is not None:
            self.statuses = list(self.on_execute)
        self.events.extend(self.events_on_execute)
        return {}

    def delete_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self._call("delete_change_set", **kwargs)
        return {}

    def delete_stack(self, **kwargs: Any) -> dict[str, Any]:
        self._call("delete_stack", **kwargs)
        self.statuses = ["DELETE_IN_PROGRESS", None]
        return {}

    def cancel_update_stack(self, **kwargs: Any) -> dict[str, Any]:
        self._call("cancel_update_stack", **kwargs)
        return {}

    def update_termination_protection(self, **kwargs: Any) -> dict[str, Any]:
        self._call("update_termination_protection", **kwargs)
        return {}


def deployer_for(fake: ScriptedCloudFormation) -> StackDeployer:
    return StackDeployer("cloudformation", None, poll_initial=0.001, poll_max=0.005,
                         client=lambda service, region: fake,
                         verify=lambda region: Identity("123456789012", "arn:aws:iam::x"))


def run(fake: ScriptedCloudFormation, tmp_path: Path, kind: ActionKind = ActionKind.DEPLOY,
        cancel: threading.Event | None = None, timeout_minutes: int = 60,
        settings: dict[str, Any] | None = None, **options: Any) -> tuple[Any, str]:
    folder = tmp_path / "services/api"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.yaml").write_text(TEMPLATE)
    ws = Workspace("api", "services/api", "service", timeout_minutes=timeout_minutes,
                   settings=frozen_mapping(settings or {}))
    log = io.StringIO()
    context = DeployContext(project="shop", environment=Environment("dev", ("eu-west-1",)),
                            region="eu-west-1", workspace=ws if kind is ActionKind.DEPLOY else None,
                            root=tmp_path, log=log, cancel=cancel or threading.Event(),
                            options=frozen_mapping(options))
    action = Action("dev", "api", "eu-west-1", kind, "c1", None, "cloudformation")
    deployer = deployer_for(fake)
    try:
        result = deployer.destroy(action, context) if kind is ActionKind.DESTROY \
            else deployer.deploy(action, context)
    except DeployError as exc:
        return exc, log.getvalue()
    return result, log.getvalue()


def test_update_rollback_failed_is_a_clear_error(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(["UPDATE_ROLLBACK_FAILED"])
    error, _ = run(fake, tmp_path)
    assert isinstance(error, DeployError)
    assert "UPDATE_ROLLBACK_FAILED" in str(error)
    assert "continue-update-rollback --stack-name shop-api-dev --region eu-west-1" in str(error.hint)
    assert "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1" \
        "#/stacks/stackinfo?stackId=arn%3Aaws%3Acloudformation" in str(error.hint)
    assert "create_change_set" not in fake.names()


def test_another_actors_update_is_waited_for(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(
        ["UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
         "UPDATE_COMPLETE"],
        on_execute=["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"])
    result, log = run(fake, tmp_path)
    assert result.changed is True and result.outputs == {"Out": "v"}
    assert "is UPDATE_IN_PROGRESS: waiting for that operation to end" in log
    create = dict(fake.calls)["create_change_set"]
    assert create["ChangeSetType"] == "UPDATE"
    assert create["Capabilities"] == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM",
                                      "CAPABILITY_AUTO_EXPAND"]
    assert dict(fake.calls)["execute_change_set"]["ChangeSetName"] == CHANGE_SET  # by ARN
    assert "DisableRollback" not in dict(fake.calls)["execute_change_set"]


def test_review_in_progress_stack_gets_a_create_change_set(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(["REVIEW_IN_PROGRESS"],
                                  on_execute=["CREATE_IN_PROGRESS", "CREATE_COMPLETE"])
    result, _ = run(fake, tmp_path)
    assert result.changed is True
    assert dict(fake.calls)["create_change_set"]["ChangeSetType"] == "CREATE"


def test_failed_update_names_the_first_failed_resources(tmp_path: Path) -> None:
    ev = ScriptedCloudFormation._event
    fake = ScriptedCloudFormation(
        ["UPDATE_COMPLETE"], on_execute=["UPDATE_IN_PROGRESS", "UPDATE_FAILED"],
        events_on_execute=[
            ev("shop-api-dev", "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS"),
            ev("T", "AWS::SNS::Topic", "UPDATE_FAILED", "Invalid parameter: DisplayName"),
            ev("Q", "AWS::SQS::Queue", "UPDATE_FAILED", "Resource update cancelled"),
            ev("shop-api-dev", "AWS::CloudFormation::Stack", "UPDATE_FAILED",
               "The following resource(s) failed to update: [T]"),
        ])
    error, log = run(fake, tmp_path, disable_rollback=True)
    assert isinstance(error, DeployError)
    assert str(error).startswith("stack shop-api-dev in eu-west-1 failed to update "
                                 "(UPDATE_FAILED): T (AWS::SNS::Topic): Invalid parameter")
    assert "Q (AWS::SQS::Queue)" not in str(error)  # a consequence, not a cause
    assert "the failed resources were kept" in str(error.hint)
    assert dict(fake.calls)["execute_change_set"]["DisableRollback"] is True
    assert "T (AWS::SNS::Topic) UPDATE_FAILED: Invalid parameter: DisplayName" in log


def test_failed_change_set_is_deleted_and_reported(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"],
                                  change_set=("FAILED", "Template format error: bad"))
    error, _ = run(fake, tmp_path)
    assert isinstance(error, DeployError)
    assert "the change set failed: Template format error: bad" in str(error)
    assert "delete_change_set" in fake.names()
    assert "execute_change_set" not in fake.names()


def test_empty_change_set_is_success_and_deleted(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"], change_set=(
        "FAILED", "The submitted information didn't contain changes. Submit different information "
                  "to create a change set."))
    result, _ = run(fake, tmp_path)
    assert result.changed is False and result.outputs == {"Out": "v"}
    assert dict(fake.calls)["delete_change_set"] == {"ChangeSetName": CHANGE_SET}
    assert "execute_change_set" not in fake.names()


def test_rollback_complete_stack_is_deleted_and_created_again(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(["ROLLBACK_COMPLETE"],
                                  on_execute=["CREATE_IN_PROGRESS", "CREATE_COMPLETE"])
    result, log = run(fake, tmp_path)
    assert result.changed is True
    names = fake.names()
    assert names.index("delete_stack") < names.index("create_change_set")
    assert dict(fake.calls)["create_change_set"]["ChangeSetType"] == "CREATE"
    assert "ROLLBACK_COMPLETE: the stack was never created" in log


def test_cancel_during_an_update_cancels_it(tmp_path: Path) -> None:
    cancel = threading.Event()
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"], on_execute=["UPDATE_IN_PROGRESS"])
    fake.hook = lambda name: cancel.set() if name == "execute_change_set" else None
    error, log = run(fake, tmp_path, cancel=cancel)
    assert isinstance(error, DeployError) and "cancelled" in str(error)
    assert dict(fake.calls)["cancel_update_stack"] == {"StackName": STACK_ID}
    assert "cancelled the update" in log


def test_cancel_before_execution_discards_the_change_set(tmp_path: Path) -> None:
    cancel = threading.Event()
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"])
    fake.hook = lambda name: cancel.set() if name == "describe_change_set" else None
    error, _ = run(fake, tmp_path, cancel=cancel)
    assert isinstance(error, DeployError) and "cancelled" in str(error)
    assert "execute_change_set" not in fake.names()
    assert "delete_change_set" in fake.names()


def test_waiting_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mila_cloudformation.deployer as module

    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"], on_execute=["UPDATE_IN_PROGRESS"])

    def tick(name: str) -> None:
        clock[0] += 20  # every call takes 20 "seconds"

    fake.hook = tick
    error, _ = run(fake, tmp_path, timeout_minutes=1)
    assert isinstance(error, DeployError)
    assert "timed out after 1 min waiting for the stack operation" in str(error)
    assert "raise `timeout`" in str(error.hint)


def test_termination_protection_is_set_and_respected(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"], on_execute=["UPDATE_IN_PROGRESS",
                                                                   "UPDATE_COMPLETE"])
    run(fake, tmp_path, settings={"termination_protection": True})
    assert dict(fake.calls)["update_termination_protection"] == {
        "EnableTerminationProtection": True, "StackName": STACK_ID}

    protected = ScriptedCloudFormation(["UPDATE_COMPLETE"], protected=True)
    error, _ = run(protected, tmp_path, kind=ActionKind.DESTROY)
    assert isinstance(error, DeployError)
    assert "termination protection" in str(error)
    assert "--no-enable-termination-protection" in str(error.hint)
    assert "delete_stack" not in protected.names()


def test_destroy_waits_for_the_delete(tmp_path: Path) -> None:
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"])
    result, log = run(fake, tmp_path, kind=ActionKind.DESTROY)
    assert result.changed is True and result.message == "deleted"
    assert dict(fake.calls)["delete_stack"]["StackName"] == STACK_ID
    assert "stack shop-api-dev deleted" in log


def test_failed_delete_is_reported(tmp_path: Path) -> None:
    ev = ScriptedCloudFormation._event
    fake = ScriptedCloudFormation(["UPDATE_COMPLETE"])

    def fail_delete(**kwargs: Any) -> dict[str, Any]:
        fake.calls.append(("delete_stack", kwargs))
        fake.statuses = ["DELETE_IN_PROGRESS", "DELETE_FAILED"]
        fake.events.append(ev("B", "AWS::S3::Bucket", "DELETE_FAILED", "The bucket is not empty"))
        return {}

    fake.delete_stack = fail_delete  # type: ignore[method-assign]
    error, _ = run(fake, tmp_path, kind=ActionKind.DESTROY)
    assert isinstance(error, DeployError)
    assert "could not be deleted (DELETE_FAILED): B (AWS::S3::Bucket): The bucket is not empty" \
        in str(error)
