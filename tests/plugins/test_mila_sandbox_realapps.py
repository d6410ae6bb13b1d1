"""Fidelity found on public sample apps (issue 15): each AWS behaviour shown failing on plain
moto first, then as AWS does it on the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from test_mila_sandbox_fidelity import deploy, outcome, outputs  # noqa: F401

from mila.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.sandbox


@pytest.fixture
def plain(plain_moto_server: SandboxHandle) -> SandboxHandle:
    plain_moto_server.reset()
    return plain_moto_server

EXPORTER = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}, "Export": {"Name": "topic-arn"}}}}
IMPORTER = {"Resources": {"Copy": {"Type": "AWS::SSM::Parameter", "Properties": {
    "Name": "/copy", "Type": "String", "Value": {"Fn::ImportValue": "topic-arn"}}}}}


def import_through_change_sets(handle: SandboxHandle) -> Any:
    deploy(handle, "exporter", EXPORTER, "CREATE")
    return outcome(lambda: deploy(handle, "importer", IMPORTER, "CREATE")["StackStatus"])


def test_import_value_in_a_stack_created_by_a_change_set(plain: SandboxHandle,
                                                          sandbox: SandboxHandle) -> None:
    assert import_through_change_sets(plain) != "CREATE_COMPLETE"
    assert import_through_change_sets(sandbox) == "CREATE_COMPLETE"
    value = sandbox.client("ssm").get_parameter(Name="/copy")["Parameter"]["Value"]
    assert value.startswith("arn:aws:sns:eu-west-1:")
