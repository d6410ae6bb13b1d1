"""Fidelity: each AWS behaviour the sandbox reproduces, shown failing on plain moto first.

Every test runs the same scenario against ``plain_moto_server`` (unpatched moto in a child
process) and against ``sandbox``, and asserts what AWS does on the latter.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from mila_sandbox.testing import SandboxHandle

pytestmark = pytest.mark.sandbox
T = TypeVar("T")


@pytest.fixture
def plain(plain_moto_server: SandboxHandle) -> SandboxHandle:
    plain_moto_server.reset()
    return plain_moto_server


def outcome(call: Callable[[], T]) -> T | str:
    """The call's result, or its error code (``HTTP 500`` for a server error, ``unparseable``
    for an answer botocore cannot read)."""
    try:
        return call()
    except ResponseParserError:
        return "unparseable"
    except ClientError as exc:
        code = exc.response["Error"].get("Code") or ""
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"HTTP {status}" if status and status >= 500 and not code.isalpha() else code


def role_arn(handle: SandboxHandle) -> str:
    iam = handle.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    return str(iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(trust))
               ["Role"]["Arn"])


def zipped(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("index.py", code)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- Lambda


def invoke_a_function(handle: SandboxHandle) -> Any:
    lam = handle.client("lambda")
    lam.create_function(FunctionName="hello", Runtime="python3.12", Role=role_arn(handle),
                        Handler="index.handler", Code={"ZipFile": zipped(
                            "def handler(event, context):\n    return {'hello': event}\n")})

    def call() -> Any:
        answer = lam.invoke(FunctionName="hello", Payload=json.dumps({"x": 1}).encode())
        text = answer["Payload"].read().decode()
        try:
            return answer.get("FunctionError"), json.loads(text)
        except ValueError:
            return answer.get("FunctionError"), text

    return outcome(call)


def test_lambda_invoke_without_docker(plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    _, plain_payload = invoke_a_function(plain)
    assert "docker" in str(plain_payload).lower()  # moto tried to run it in Docker
    error, payload = invoke_a_function(sandbox)
    assert error is None
    assert payload["milaSandbox"] == "not executed"
    assert payload["event"] == {"x": 1}
    assert "does not run Lambda code" in payload["message"]


# ----------------------------------------------------------------------------- CloudFormation

QUEUE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue",
                                 "Properties": {"VisibilityTimeout": 30}}},
         "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}, "Export": {"Name": "queue-url"}},
                     "Timeout": {"Value": "30"}}}


def with_changes(template: dict[str, Any], timeout: int) -> dict[str, Any]:
    changed = json.loads(json.dumps(template))
    changed["Resources"]["Queue"]["Properties"]["VisibilityTimeout"] = timeout
    changed["Outputs"]["Timeout"]["Value"] = str(timeout)
    return changed


def change_set(handle: SandboxHandle, stack: str, template: dict[str, Any] | str, kind: str,
               name: str = "deploy", **kwargs: Any) -> dict[str, Any]:
    """Create a change set (addressed by ARN afterwards); its description."""
    cfn = handle.client("cloudformation")
    body = template if isinstance(template, str) else json.dumps(template)
    created = cfn.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType=kind,
                                    TemplateBody=body, **kwargs)
    return dict(cfn.describe_change_set(ChangeSetName=created["Id"]))


def deploy(handle: SandboxHandle, stack: str, template: dict[str, Any] | str, kind: str,
           name: str = "deploy", **kwargs: Any) -> dict[str, Any]:
    """Create and execute a change set; the stack's description afterwards."""
    cfn = handle.client("cloudformation")
    described = change_set(handle, stack, template, kind, name, **kwargs)
    assert described["Status"] == "CREATE_COMPLETE", described
    cfn.execute_change_set(ChangeSetName=described["ChangeSetId"])
    return dict(cfn.describe_stacks(StackName=described["StackId"])["Stacks"][0])


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def outputs_after_change_sets(handle: SandboxHandle) -> tuple[dict[str, str], list[str],
                                                              dict[str, str]]:
    created = deploy(handle, "orders", QUEUE, "CREATE")
    exports = [e["Name"] for e in handle.client("cloudformation").list_exports()["Exports"]]
    updated = deploy(handle, "orders", with_changes(QUEUE, 60), "UPDATE", name="deploy-2")
    return outputs(created), exports, outputs(updated)


def test_outputs_and_exports_after_create_and_update_change_sets(
        plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    created, exports, updated = outputs_after_change_sets(plain)
    assert created == {} and exports == []  # plain moto: nothing after a CREATE change set
    assert updated.get("Timeout") != "60"  # ... and stale outputs after an UPDATE one
    created, exports, updated = outputs_after_change_sets(sandbox)
    assert created["Timeout"] == "30" and "/orders-Queue-" in created["QueueUrl"]
    assert exports == ["queue-url"]
    assert updated["Timeout"] == "60" and updated["QueueUrl"] == created["QueueUrl"]


def two_stacks_one_change_set_name(handle: SandboxHandle) -> tuple[Any, Any]:
    """Stacks a and b each get a change set named ``deploy``; execute a's by name."""
    cfn = handle.client("cloudformation")
    a = change_set(handle, "a", QUEUE | {"Outputs": {}}, "CREATE")
    b = change_set(handle, "b", QUEUE | {"Outputs": {}}, "CREATE")
    described_a = outcome(lambda: cfn.describe_change_set(ChangeSetName="deploy",
                                                          StackName="a")["StackName"])
    cfn.execute_change_set(ChangeSetName="deploy", StackName="a")
    status = {s: cfn.describe_stacks(StackName=cs["StackId"])["Stacks"][0]["StackStatus"]
              for s, cs in (("a", a), ("b", b))}
    return described_a, status


def test_change_sets_are_scoped_to_their_stack(plain: SandboxHandle,
                                               sandbox: SandboxHandle) -> None:
    described, status = two_stacks_one_change_set_name(plain)
    assert described == "b" and status["b"] == "CREATE_COMPLETE"  # plain moto: b's, not a's
    described, status = two_stacks_one_change_set_name(sandbox)
    assert described == "a"
    assert status == {"a": "CREATE_COMPLETE", "b": "REVIEW_IN_PROGRESS"}
    cfn = sandbox.client("cloudformation")
    assert outcome(lambda: cfn.describe_change_set(ChangeSetName="deploy")) == "ValidationError"
    assert outcome(lambda: cfn.describe_change_set(ChangeSetName="nope", StackName="a")) == \
        "ChangeSetNotFound"
    assert [s["StackName"] for s in cfn.list_change_sets(StackName="a")["Summaries"]] == ["a"]


def execute_an_empty_change_set(handle: SandboxHandle) -> tuple[str, Any]:
    deploy(handle, "orders", QUEUE, "CREATE")
    empty = change_set(handle, "orders", QUEUE, "UPDATE", name="nothing")
    cfn = handle.client("cloudformation")
    return empty["Status"], outcome(lambda: cfn.execute_change_set(
        ChangeSetName=empty["ChangeSetId"]))


def test_executing_a_failed_change_set_is_refused(plain: SandboxHandle,
                                                  sandbox: SandboxHandle) -> None:
    status, executed = execute_an_empty_change_set(plain)
    assert status == "FAILED" and isinstance(executed, dict)  # plain moto runs it
    status, executed = execute_an_empty_change_set(sandbox)
    assert status == "FAILED" and executed == "InvalidChangeSetStatus"


def create_change_set_twice(handle: SandboxHandle) -> tuple[Any, int]:
    deploy(handle, "orders", QUEUE, "CREATE")
    second = outcome(lambda: change_set(handle, "orders", QUEUE, "CREATE", name="again"))
    stacks = handle.client("cloudformation").list_stacks()["StackSummaries"]
    return second if isinstance(second, str) else "created", \
        sum(s["StackName"] == "orders" for s in stacks)


def test_create_change_set_for_an_existing_stack_is_refused(plain: SandboxHandle,
                                                            sandbox: SandboxHandle) -> None:
    assert create_change_set_twice(plain) == ("created", 2)  # plain moto: a second stack
    assert create_change_set_twice(sandbox) == ("ValidationError", 1)


def table(name: str | None = None, **properties: Any) -> dict[str, Any]:
    props = {"BillingMode": "PAY_PER_REQUEST",
             "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], **properties}
    if name:
        props["TableName"] = name
    return {"Type": "AWS::DynamoDB::Table", "Properties": props}


def take_table_name(handle: SandboxHandle, name: str = "taken") -> None:
    handle.client("dynamodb").create_table(TableName=name, **{
        k: v for k, v in table()["Properties"].items()})


def events(handle: SandboxHandle, stack: str) -> list[tuple[str, str, str]]:
    """(logical id, status, reason) oldest first."""
    answer = handle.client("cloudformation").describe_stack_events(StackName=stack)
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason") or "")
            for e in answer["StackEvents"][::-1]]


def stack_status(handle: SandboxHandle, stack: str) -> Any:
    cfn = handle.client("cloudformation")
    return outcome(lambda: cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])


FAILS_ON_CREATE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"},
                                 "Table": table("taken") | {"DependsOn": "Queue"}}}


def create_a_failing_stack(handle: SandboxHandle) -> tuple[Any, Any, list[str]]:
    take_table_name(handle)
    cfn = handle.client("cloudformation")
    created = outcome(lambda: cfn.create_stack(StackName="broken",
                                               TemplateBody=json.dumps(FAILS_ON_CREATE)))
    return (created if isinstance(created, str) else "accepted", stack_status(handle, "broken"),
            handle.client("sqs").list_queues().get("QueueUrls", []))


def test_a_failing_resource_rolls_the_create_back(plain: SandboxHandle,
                                                  sandbox: SandboxHandle) -> None:
    answer, status, _ = create_a_failing_stack(plain)
    assert answer != "accepted" and status == "CREATE_IN_PROGRESS"  # plain moto: a zombie
    answer, status, queues = create_a_failing_stack(sandbox)
    assert (answer, status, queues) == ("accepted", "ROLLBACK_COMPLETE", [])
    seen = events(sandbox, "broken")
    failed = [e for e in seen if e[1] == "CREATE_FAILED"]
    assert failed == [("Table", "CREATE_FAILED",
                       'Resource handler returned message: "Table already exists: taken"')]
    assert [e[:2] for e in seen if e[0] == "broken"] == [
        ("broken", "CREATE_IN_PROGRESS"), ("broken", "ROLLBACK_IN_PROGRESS"),
        ("broken", "ROLLBACK_COMPLETE")]
    assert ("Queue", "DELETE_COMPLETE") in [e[:2] for e in seen]
    cfn = sandbox.client("cloudformation")
    # a rolled-back stack can only be deleted, as on AWS
    assert outcome(lambda: change_set(sandbox, "broken", QUEUE, "UPDATE")) == "ValidationError"
    cfn.delete_stack(StackName="broken")
    assert stack_status(sandbox, "broken") == "ValidationError"


def test_a_failing_change_set_rolls_back_too(sandbox: SandboxHandle) -> None:
    take_table_name(sandbox)
    stack = deploy(sandbox, "orders", QUEUE, "CREATE")
    broken = with_changes(QUEUE, 60)
    broken["Resources"]["Table"] = table("taken")
    after = deploy(sandbox, "orders", broken, "UPDATE", name="deploy-2")
    assert after["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert outputs(after) == outputs(stack)  # the previous outputs, as on AWS
    assert ("Table", "CREATE_FAILED",
            'Resource handler returned message: "Table already exists: taken"') in \
        events(sandbox, "orders")
    queue_url = outputs(stack)["QueueUrl"]
    attributes = sandbox.client("sqs").get_queue_attributes(QueueUrl=queue_url,
                                                            AttributeNames=["All"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "30"  # rolled back
    # and the stack can be updated again
    assert deploy(sandbox, "orders", with_changes(QUEUE, 90), "UPDATE",
                  name="deploy-3")["StackStatus"] == "UPDATE_COMPLETE"


def describe_a_deleted_stack(handle: SandboxHandle) -> tuple[Any, list[str]]:
    template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
                "Outputs": {"Name": {"Value": {"Ref": "Bucket"}}}}
    cfn = handle.client("cloudformation")
    stack_id = cfn.create_stack(StackName="gone", TemplateBody=json.dumps(template))["StackId"]
    cfn.delete_stack(StackName="gone")
    described = outcome(lambda: cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
                        ["StackStatus"])
    return described, [b["Name"] for b in handle.client("s3").list_buckets()["Buckets"]]


def test_deleted_stacks_stay_deleted(plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    _, buckets = describe_a_deleted_stack(plain)
    assert buckets  # plain moto: describing it re-created the bucket
    assert describe_a_deleted_stack(sandbox) == ("DELETE_COMPLETE", [])
    cfn = sandbox.client("cloudformation")
    assert outcome(lambda: cfn.describe_stacks(StackName="gone")) == "ValidationError"


def test_stack_events_are_per_resource(plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    for handle in (plain, sandbox):
        deploy(handle, "orders", QUEUE, "CREATE")
    assert {e[0] for e in events(plain, "orders")} == {"orders"}  # plain moto: stack only
    seen = events(sandbox, "orders")
    assert [e[:2] for e in seen] == [
        ("orders", "REVIEW_IN_PROGRESS"), ("orders", "CREATE_IN_PROGRESS"),
        ("Queue", "CREATE_IN_PROGRESS"), ("Queue", "CREATE_COMPLETE"),
        ("orders", "CREATE_COMPLETE")]
    answer = sandbox.client("cloudformation").describe_stack_events(StackName="orders")
    queue_done = [e for e in answer["StackEvents"] if e["LogicalResourceId"] == "Queue"
                  and e["ResourceStatus"] == "CREATE_COMPLETE"]
    assert queue_done[0]["PhysicalResourceId"].startswith("https://sqs.")
    assert queue_done[0]["ResourceType"] == "AWS::SQS::Queue"
    deploy(sandbox, "orders", with_changes(QUEUE, 60), "UPDATE", name="deploy-2")
    (resource,) = sandbox.client("cloudformation").describe_stack_resources(
        StackName="orders")["StackResources"]
    assert resource["ResourceStatus"] == "UPDATE_COMPLETE"


ROLE = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                            "Principal": {"Service": "lambda.amazonaws.com"}}]}}}


def capabilities_required(handle: SandboxHandle) -> list[Any]:
    cfn = handle.client("cloudformation")
    anonymous = json.dumps({"Resources": {"Role": ROLE}})

    def named(role: str) -> str:
        return json.dumps({"Resources": {"Role": ROLE | {"Properties": {
            **ROLE["Properties"], "RoleName": role}}}})

    return [outcome(lambda: cfn.create_stack(StackName="r1", TemplateBody=anonymous)),
            outcome(lambda: change_set(handle, "r2", anonymous, "CREATE")),
            outcome(lambda: cfn.create_stack(StackName="r3", TemplateBody=named("role-3"),
                                             Capabilities=["CAPABILITY_IAM"])),
            outcome(lambda: cfn.create_stack(StackName="r4", TemplateBody=anonymous,
                                             Capabilities=["CAPABILITY_IAM"])),
            outcome(lambda: cfn.create_stack(StackName="r5", TemplateBody=named("role-5"),
                                             Capabilities=["CAPABILITY_NAMED_IAM"]))]


def test_iam_capabilities_are_required(plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    assert not any(isinstance(r, str) for r in capabilities_required(plain))  # not checked
    refused, refused_cs, refused_named, ok, ok_named = capabilities_required(sandbox)
    assert refused == refused_cs == refused_named == "InsufficientCapabilitiesException"
    assert isinstance(ok, dict) and isinstance(ok_named, dict)
    cfn = sandbox.client("cloudformation")
    with pytest.raises(ClientError, match=r"Requires capabilities : \[CAPABILITY_IAM\]"):
        cfn.create_stack(StackName="r6", TemplateBody=json.dumps({"Resources": {"Role": ROLE}}))


API_AND_TABLE = {
    "Resources": {"Table": table(), "Logs": {"Type": "AWS::Logs::LogGroup",
                                             "Properties": {"RetentionInDays": 7}}},
    "Outputs": {"TableName": {"Value": {"Ref": "Table"}},
                "TableArn": {"Value": {"Fn::GetAtt": ["Table", "Arn"]}},
                "Logs": {"Value": {"Ref": "Logs"}}}}


def update_types_moto_cannot_update(handle: SandboxHandle,
                                    change_sets: bool) -> tuple[Any, Any]:
    changed = json.loads(json.dumps(API_AND_TABLE))
    changed["Resources"]["Table"]["Properties"]["StreamSpecification"] = {
        "StreamViewType": "NEW_IMAGE"}
    changed["Resources"]["Logs"]["Properties"]["RetentionInDays"] = 14
    cfn = handle.client("cloudformation")
    if change_sets:
        deploy(handle, "data", API_AND_TABLE, "CREATE")
        deploy(handle, "data", changed, "UPDATE", name="deploy-2")
    else:
        cfn.create_stack(StackName="data", TemplateBody=json.dumps(API_AND_TABLE))
        cfn.update_stack(StackName="data", TemplateBody=json.dumps(changed))
    return stack_status(handle, "data"), outcome(
        lambda: outputs(cfn.describe_stacks(StackName="data")["Stacks"][0]))


@pytest.mark.parametrize("change_sets", [False, True], ids=["update-stack", "change-set"])
def test_updates_of_types_moto_cannot_update(plain: SandboxHandle, sandbox: SandboxHandle,
                                             change_sets: bool) -> None:
    if not change_sets:
        _, described = update_types_moto_cannot_update(plain, change_sets)
        assert isinstance(described, str)  # plain moto: DescribeStacks fails from now on
    status, described = update_types_moto_cannot_update(sandbox, change_sets)
    assert status == "UPDATE_COMPLETE"
    assert isinstance(described, dict)
    ddb = sandbox.client("dynamodb")
    live = ddb.describe_table(TableName=described["TableName"])["Table"]
    assert live["TableArn"] == described["TableArn"]
    assert live["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    groups = sandbox.client("logs").describe_log_groups()["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == \
        [(described["Logs"], 14)]


def inline_function(code: str, role: str) -> dict[str, Any]:
    return {"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": "inline", "Runtime": "python3.12", "Handler": "index.handler",
        "Role": role,
        "Code": {"ZipFile": code}}}},
            "Outputs": {"Name": {"Value": {"Ref": "Fn"}}}}


def update_inline_code(handle: SandboxHandle) -> tuple[Any, Any]:
    role = role_arn(handle)
    deploy(handle, "fn", inline_function("def handler(e, c):\n    return 1\n", role), "CREATE")
    name = "inline"
    lam = handle.client("lambda")
    before = lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    updated = outcome(lambda: deploy(handle, "fn", inline_function(
        "def handler(e, c):\n    return 2\n", role), "UPDATE", name="deploy-2"))
    after = outcome(lambda: lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"])
    return updated if isinstance(updated, str) else updated["StackStatus"], after != before


def test_inline_code_lambda_updates(plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    status, _ = update_inline_code(plain)
    assert status != "UPDATE_COMPLETE"  # plain moto: HTTP 500
    assert update_inline_code(sandbox) == ("UPDATE_COMPLETE", True)


SKIPPED_BY_MOTO = {
    "Resources": {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "shop"}},
        "Orders": {"Type": "AWS::ApiGateway::Resource", "Properties": {
            "RestApiId": {"Ref": "Api"}, "PathPart": "orders",
            "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]}}},
        "List": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ResourceId": {"Ref": "Orders"}, "HttpMethod": "GET",
            "AuthorizationType": "NONE", "Integration": {
                "Type": "MOCK", "IntegrationHttpMethod": "POST", "Uri": ""}}},
        "Deployment": {"Type": "AWS::ApiGateway::Deployment", "DependsOn": "List",
                       "Properties": {"RestApiId": {"Ref": "Api"}}},
        "Live": {"Type": "AWS::ApiGateway::Stage",
                 "Properties": {"RestApiId": {"Ref": "Api"}, "StageName": "live",
                                "DeploymentId": {"Ref": "Deployment"}}},
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Policy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "Bucket"}, "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": {"Fn::Sub": "arn:aws:s3:::${Bucket}/*"},
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}}},
    "Outputs": {"ApiId": {"Value": {"Ref": "Api"}}, "Bucket": {"Value": {"Ref": "Bucket"}},
                "Stage": {"Value": {"Ref": "Live"}}}}


def create_skipped_types(handle: SandboxHandle) -> tuple[list[str], Any]:
    cfn = handle.client("cloudformation")
    cfn.create_stack(StackName="web", TemplateBody=json.dumps(SKIPPED_BY_MOTO))
    apigw, s3 = handle.client("apigateway"), handle.client("s3")
    (api,) = apigw.get_rest_apis()["items"]
    (bucket,) = s3.list_buckets()["Buckets"]
    stages = sorted(s["stageName"] for s in apigw.get_stages(restApiId=api["id"])["item"])
    return stages, outcome(lambda: json.loads(s3.get_bucket_policy(Bucket=bucket["Name"])
                                              ["Policy"])["Statement"][0]["Effect"])


def test_stages_and_bucket_policies_are_created(plain: SandboxHandle,
                                                sandbox: SandboxHandle) -> None:
    assert create_skipped_types(plain) == ([], "NoSuchBucketPolicy")  # plain moto skips them
    assert create_skipped_types(sandbox) == (["live"], "Deny")
    cfn = sandbox.client("cloudformation")
    stack = cfn.describe_stacks(StackName="web")["Stacks"][0]
    assert outputs(stack)["Stage"] == "live"
    cfn.delete_stack(StackName="web")
    assert sandbox.client("apigateway").get_rest_apis()["items"] == []
    assert sandbox.client("s3").list_buckets()["Buckets"] == []


def test_disabled_rollback_keeps_what_was_created(sandbox: SandboxHandle) -> None:
    take_table_name(sandbox)
    cfn = sandbox.client("cloudformation")
    described = change_set(sandbox, "kept", FAILS_ON_CREATE, "CREATE")
    cfn.execute_change_set(ChangeSetName=described["ChangeSetId"], DisableRollback=True)
    assert stack_status(sandbox, "kept") == "CREATE_FAILED"
    assert len(sandbox.client("sqs").list_queues()["QueueUrls"]) == 1  # kept for debugging
    fixed = json.loads(json.dumps(FAILS_ON_CREATE))
    fixed["Resources"]["Table"] = table("free") | {"DependsOn": "Queue"}
    assert deploy(sandbox, "kept", fixed, "UPDATE", name="fix")["StackStatus"] == \
        "UPDATE_COMPLETE"
    # OnFailure=DELETE: rolled back, then deleted
    cfn.create_stack(StackName="gone", TemplateBody=json.dumps(FAILS_ON_CREATE),
                     OnFailure="DELETE")
    assert stack_status(sandbox, "gone") == "ValidationError"


CHILD = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
         "Outputs": {"Url": {"Value": {"Ref": "Queue"}}}}
PARENT = {"Resources": {"Child": {"Type": "AWS::CloudFormation::Stack", "Properties": {
    "TemplateURL": "https://templates.s3.amazonaws.com/child.json"}}},
          "Outputs": {"Url": {"Value": {"Fn::GetAtt": ["Child", "Outputs.Url"]}}}}


def nested_stack(handle: SandboxHandle) -> Any:
    s3 = handle.client("s3")
    s3.create_bucket(Bucket="templates",
                     CreateBucketConfiguration={"LocationConstraint": handle.region})
    s3.put_object(Bucket="templates", Key="child.json", Body=json.dumps(CHILD).encode())
    cfn = handle.client("cloudformation")
    created = outcome(lambda: cfn.create_stack(StackName="parent",
                                               TemplateBody=json.dumps(PARENT)))
    if isinstance(created, str):
        return created
    return outputs(cfn.describe_stacks(StackName="parent")["Stacks"][0])


def test_nested_stack_outputs(plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    on_plain = nested_stack(plain)
    assert isinstance(on_plain, str) or "Url" not in on_plain  # plain: no Outputs.X
    assert "/parent-Child-" in nested_stack(sandbox)["Url"]
    cfn = sandbox.client("cloudformation")
    cfn.delete_stack(StackName="parent")
    assert sandbox.client("sqs").list_queues().get("QueueUrls", []) == []


def _topic_with_default(version: str) -> dict[str, Any]:
    return {"Parameters": {"Version": {"Type": "String", "Default": version}},
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {
                "TopicName": {"Fn::Sub": "orders-${Version}"}}}},
            "Outputs": {"Arn": {"Value": {"Ref": "Topic"}}}}


def changes_after_a_new_default(handle: SandboxHandle) -> Any:
    deploy(handle, "topics", _topic_with_default("1"), "CREATE")
    described = change_set(handle, "topics", _topic_with_default("2"), "UPDATE", name="deploy-2")
    return [c["ResourceChange"] for c in described["Changes"]]


def test_a_new_parameter_default_modifies_what_reaches_it(plain: SandboxHandle,
                                                          sandbox: SandboxHandle) -> None:
    """AWS: a change set whose template gives a parameter a new Default re-evaluates every
    resource reaching it (here through !Sub, on a create-only property: a replacement)."""
    assert outcome(lambda: changes_after_a_new_default(plain)) == []  # moto: "no changes"
    [change] = changes_after_a_new_default(sandbox)
    assert (change["Action"], change["LogicalResourceId"], change["Replacement"]) == \
        ("Modify", "Topic", "True")
    assert change["Details"] == [{
        "Target": {"Attribute": "Properties", "Name": "TopicName", "RequiresRecreation": "Always"},
        "Evaluation": "Static", "ChangeSource": "ParameterReference", "CausingEntity": "Version"}]
