"""Fidelity: CloudFormation dynamic references resolve in the sandbox, as on AWS
(``plugins/mila_sandbox/cfn_dynamic_refs.py``); plain moto leaves the literal text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mila_sandbox.testing import SandboxHandle

pytestmark = pytest.mark.sandbox


def template(version: str) -> dict[str, Any]:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": "lambda.amazonaws.com"}}]}
    return {"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(e, c):\n    return 1\n"},
            "Environment": {"Variables": {
                "URL": f"{{{{resolve:ssm:/app/url:{version}}}}}",
                "LATEST": "https://{{resolve:ssm:/app/url}}/v1",
                "PASSWORD": "{{resolve:secretsmanager:app/db:SecretString:password}}",
                "WHOLE": "{{resolve:secretsmanager:app/db}}"}}}}}}


def function_environment(handle: SandboxHandle, version: str) -> dict[str, str]:
    handle.client("ssm").put_parameter(Name="/app/url", Value="one.example", Type="String")
    handle.client("ssm").put_parameter(Name="/app/url", Value="two.example", Type="String",
                                       Overwrite=True)
    handle.client("secretsmanager").create_secret(
        Name="app/db", SecretString=json.dumps({"password": "s3cret-pw"}))
    cfn = handle.client("cloudformation")
    cfn.create_stack(StackName="refs", TemplateBody=json.dumps(template(version)),
                     Capabilities=["CAPABILITY_IAM"])
    fn = cfn.describe_stack_resource(StackName="refs", LogicalResourceId="Fn")
    config = handle.client("lambda").get_function_configuration(
        FunctionName=fn["StackResourceDetail"]["PhysicalResourceId"])
    return dict(config["Environment"]["Variables"])


@pytest.fixture
def plain(plain_moto_server: SandboxHandle) -> SandboxHandle:
    plain_moto_server.reset()
    return plain_moto_server


def test_dynamic_references_reach_a_lambda_environment(plain: SandboxHandle,
                                                        sandbox: SandboxHandle) -> None:
    assert function_environment(plain, "1")["URL"] == "{{resolve:ssm:/app/url:1}}"
    env = function_environment(sandbox, "1")
    assert env == {"URL": "one.example", "LATEST": "https://two.example/v1",
                   "PASSWORD": "s3cret-pw", "WHOLE": json.dumps({"password": "s3cret-pw"})}
    # the template keeps the reference, never the value
    body = sandbox.client("cloudformation").get_template(StackName="refs")["TemplateBody"]
    assert "s3cret-pw" not in json.dumps(body)


def test_a_missing_reference_fails_the_stack(sandbox: SandboxHandle) -> None:
    cfn = sandbox.client("cloudformation")
    cfn.create_stack(StackName="refs", TemplateBody=json.dumps(template("1")),
                     Capabilities=["CAPABILITY_IAM"])
    stack = cfn.describe_stacks(StackName="refs")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason", "") for e in
               cfn.describe_stack_events(StackName="refs")["StackEvents"]]
    assert any("/app/url" in r for r in reasons), reasons
