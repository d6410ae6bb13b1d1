"""The SAM transform in the sandbox: a SAM template is sent exactly as to AWS (``Transform``
and all) through a change set, expanded server-side, deployed, and reports its outputs."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from mila_sandbox.testing import SandboxHandle

pytestmark = pytest.mark.sandbox

SAM_APP = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: shop orders
Parameters:
  Stage:
    Type: String
    Default: dev
Resources:
  Orders:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
  Api:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: s3://artifacts/orders-1.zip
      Environment:
        Variables:
          TABLE: !Ref Orders
          STAGE: !Ref Stage
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref Orders
      Events:
        List:
          Type: Api
          Properties:
            Path: /orders
            Method: get
        Nightly:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
Outputs:
  ApiUrl:
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/"
  FunctionName:
    Value: !Ref Api
  FunctionArn:
    Value: !GetAtt Api.Arn
  TableName:
    Value: !Ref Orders
"""
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]


def zipped(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.py", code)
    return buffer.getvalue()


def package(handle: SandboxHandle, key: str, code: str) -> None:
    s3 = handle.client("s3")
    if not s3.list_buckets()["Buckets"]:
        s3.create_bucket(Bucket="artifacts",
                         CreateBucketConfiguration={"LocationConstraint": handle.region})
    s3.put_object(Bucket="artifacts", Key=key, Body=zipped(code))


def deploy(handle: SandboxHandle, template: str, kind: str, name: str,
           parameters: list[dict[str, str]] | None = None) -> dict[str, Any]:
    cfn = handle.client("cloudformation")
    created = cfn.create_change_set(StackName="orders", ChangeSetName=name, ChangeSetType=kind,
                                    TemplateBody=template, Capabilities=CAPABILITIES,
                                    Parameters=parameters or [])
    described = cfn.describe_change_set(ChangeSetName=created["Id"])
    assert described["Status"] == "CREATE_COMPLETE", described.get("StatusReason")
    cfn.execute_change_set(ChangeSetName=created["Id"])
    return dict(cfn.describe_stacks(StackName=created["StackId"])["Stacks"][0])


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def test_plain_moto_does_not_transform(plain_moto_server: SandboxHandle) -> None:
    plain_moto_server.reset()
    package(plain_moto_server, "orders-1.zip", "def handler(e, c):\n    return 1\n")
    stack = deploy(plain_moto_server, SAM_APP, "CREATE", "deploy-1")
    assert outputs(stack) == {}
    assert plain_moto_server.client("lambda").list_functions()["Functions"] == []


def test_sam_app_deploys_through_a_change_set(sandbox: SandboxHandle) -> None:
    package(sandbox, "orders-1.zip", "def handler(e, c):\n    return 1\n")
    stack = deploy(sandbox, SAM_APP, "CREATE", "deploy-1")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    out = outputs(stack)
    region = sandbox.region
    assert out["FunctionArn"] == f"arn:aws:lambda:{region}:123456789012:function:{out['FunctionName']}"
    assert out["FunctionName"].startswith("orders-Api-")

    # the function, with its generated role, environment and code from S3
    lam = sandbox.client("lambda")
    function = lam.get_function(FunctionName=out["FunctionName"])["Configuration"]
    assert function["Environment"]["Variables"] == {"TABLE": out["TableName"], "STAGE": "dev"}
    assert ":role/orders-ApiRole-" in function["Role"]
    # the implicit REST API, named after the stack, with the event's path and method
    apigw = sandbox.client("apigateway")
    api_id = out["ApiUrl"].split("//")[1].split(".")[0]
    api = apigw.get_rest_api(restApiId=api_id)
    assert api["name"] == "orders"
    paths = {r["path"]: sorted(r.get("resourceMethods", {})) for r in
             apigw.get_resources(restApiId=api_id)["items"]}
    assert paths["/orders"] == ["GET"]
    assert out["ApiUrl"] == f"https://{api_id}.execute-api.{region}.amazonaws.com/Prod/"
    assert "Prod" in [s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]]
    # the schedule, targeting the function
    events = sandbox.client("events")
    (rule,) = events.list_rules()["Rules"]
    assert rule["ScheduleExpression"] == "rate(1 day)"
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == out["FunctionArn"]
    # the table
    assert sandbox.client("dynamodb").describe_table(TableName=out["TableName"])
    # the template as sent, and as expanded
    cfn = sandbox.client("cloudformation")
    assert cfn.get_template(StackName="orders")["TemplateBody"] == SAM_APP
    processed = cfn.get_template(StackName="orders", TemplateStage="Processed")["TemplateBody"]
    processed = processed if isinstance(processed, dict) else json.loads(processed)
    assert "Transform" not in processed
    assert processed["Resources"]["Api"]["Type"] == "AWS::Lambda::Function"

    # an update: new code, new schedule, new parameter value — same names, new outputs
    package(sandbox, "orders-2.zip", "def handler(e, c):\n    return 2\n")
    changed = SAM_APP.replace("orders-1.zip", "orders-2.zip").replace("rate(1 day)",
                                                                      "rate(2 days)")
    updated = deploy(sandbox, changed, "UPDATE", "deploy-2",
                     parameters=[{"ParameterKey": "Stage", "ParameterValue": "prod"}])
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(updated) == out
    assert [r["ScheduleExpression"] for r in events.list_rules()["Rules"]] == ["rate(2 days)"]
    assert cfn.get_template(StackName="orders")["TemplateBody"] == changed


def test_sam_template_sent_to_create_stack_needs_auto_expand(sandbox: SandboxHandle) -> None:
    package(sandbox, "orders-1.zip", "def handler(e, c):\n    return 1\n")
    cfn = sandbox.client("cloudformation")
    with pytest.raises(cfn.exceptions.InsufficientCapabilitiesException,
                       match="CAPABILITY_AUTO_EXPAND"):
        cfn.create_stack(StackName="orders", TemplateBody=SAM_APP, Capabilities=["CAPABILITY_IAM"])
    with pytest.raises(cfn.exceptions.InsufficientCapabilitiesException,
                       match=r"\[CAPABILITY_IAM\]"):  # SAM's generated role needs it
        cfn.create_change_set(StackName="orders", ChangeSetName="deploy-1",
                              ChangeSetType="CREATE", TemplateBody=SAM_APP)


def test_an_invalid_sam_template_is_refused_with_the_translator_message(
        sandbox: SandboxHandle) -> None:
    broken = SAM_APP.replace("Type: Schedule", "Type: Nope")
    cfn = sandbox.client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError,
                       match="Invalid Serverless Application.*Event Type is: Nope"):
        cfn.create_change_set(StackName="orders", ChangeSetName="deploy-1",
                              ChangeSetType="CREATE", TemplateBody=broken,
                              Capabilities=CAPABILITIES)
