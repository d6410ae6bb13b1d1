"""The resource-level diff on the sandbox: `mila diff` and `mila deploy --only-prompt --diff`
show a Modify with replacement (a create-only property) and without, an Add, and a first
deploy's resources; the change sets are deleted and nothing is deployed or recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.sandbox

STORE = """\
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-orders"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - AttributeName: id
          AttributeType: S
      KeySchema:
        - AttributeName: id
          KeyType: HASH
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: orders
"""


@pytest.fixture
def store(sandbox: Any, project: Any, run_mila: Any) -> Any:
    project.root_config(workspaces=["services/*"], backend="aws")
    project.service("store", "", files={"template.yaml": STORE})
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    return project


def cfn() -> Any:
    from mila_aws.session import client

    return client("cloudformation", "eu-west-1")


def test_diff_shows_replacements_and_changes_nothing(store: Any, run_mila: Any) -> None:
    r = run_mila("diff", "-e", "dev")
    assert r.exit_code == 0, r.output
    assert "store in eu-west-1: 2 resource changes" in r.output
    assert "Add Table (AWS::DynamoDB::Table)" in r.output and "Add Topic" in r.output
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    described = run_mila("envs", "describe", "dev", "--json").stdout

    store.write("services/store/template.yaml",
                STORE.replace("-orders", "-orders-v2").replace("DisplayName: orders",
                                                               "DisplayName: Orders")
                + "  Queue:\n    Type: AWS::SQS::Queue\n")
    r = run_mila("deploy", "-e", "dev", "--only-prompt", "--diff")
    assert r.exit_code == 0, r.output
    assert "Modify Table (AWS::DynamoDB::Table) REPLACED: TableName" in r.output
    assert "Modify Topic (AWS::SNS::Topic): DisplayName" in r.output
    assert "Add Queue (AWS::SQS::Queue)" in r.output

    r = run_mila("diff", "-e", "dev", "--json")
    assert r.exit_code == 0, r.output
    (action,) = json.loads(r.stdout)["actions"]
    changes = {c["logical_id"]: c for c in action["diff"]["changes"]}
    assert changes["Table"] == {"action": "Modify", "logical_id": "Table",
                                "resource_type": "AWS::DynamoDB::Table", "replacement": "True",
                                "properties": ["TableName"]}
    assert changes["Topic"]["replacement"] == "False"
    assert changes["Queue"]["action"] == "Add"

    # nothing was executed or left behind, nothing recorded
    stack = cfn().describe_stacks(StackName="shop-store-dev")["Stacks"][0]
    assert {r["LogicalResourceId"] for r in cfn().describe_stack_resources(
        StackName="shop-store-dev")["StackResources"]} == {"Table", "Topic"}
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert [c["ChangeSetName"] for c in cfn().list_change_sets(StackName="shop-store-dev")[
        "Summaries"] if c["ChangeSetName"].startswith("mila-diff-")] == []
    assert run_mila("envs", "describe", "dev", "--json").stdout == described


def test_a_deployer_without_describe_changes_says_so(sandbox: Any, project: Any, run_mila: Any,
                                                    monkeypatch: Any) -> None:
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"])
    project.service("web", 'deployer = "fake"\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    r = run_mila("diff", "-e", "dev")
    assert r.exit_code == 0, r.output
    assert "web in eu-west-1: no resource diff: deployer 'fake' cannot describe" in r.output
