"""Fidelity found on public sample apps (issue 15): each AWS behaviour shown failing on plain
moto first, then as AWS does it on the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mila_sandbox.testing import SandboxHandle
from test_mila_sandbox_fidelity import deploy, outcome, outputs, zipped

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


POWERTOOLS = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:7"


def layered(description: str) -> dict[str, Any]:
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}}}
    return {"Resources": {
        "Role": role,
        "Deps": {"Type": "AWS::Lambda::LayerVersion", "Properties": {
            "LayerName": "deps", "Content": {"S3Bucket": "code", "S3Key": "layer.zip"}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "index.handler", "Description": description,
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
            "Layers": [{"Ref": "Deps"}, POWERTOOLS]}}},
        "Outputs": {"LayerArn": {"Value": {"Ref": "Deps"}}}}


def update_a_function_with_layers(handle: SandboxHandle) -> Any:
    s3 = handle.client("s3")
    s3.create_bucket(Bucket="code", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="code", Key="layer.zip", Body=zipped("VALUE = 1\n"))
    created = deploy(handle, "layered", layered("one"), "CREATE", Capabilities=["CAPABILITY_IAM"])
    updated = outcome(lambda: deploy(handle, "layered", layered("two"), "UPDATE", name="two",
                                     Capabilities=["CAPABILITY_IAM"]))
    return created, updated


def test_a_function_with_a_layer_of_its_stack_and_a_public_one_updates(
        plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    _, updated = update_a_function_with_layers(plain)
    assert not isinstance(updated, dict) or updated["StackStatus"] != "UPDATE_COMPLETE"
    created, updated = update_a_function_with_layers(sandbox)
    layer_arn = outputs(created)["LayerArn"]
    assert layer_arn.startswith("arn:aws:lambda:eu-west-1:123456789012:layer:")
    assert isinstance(updated, dict) and updated["StackStatus"] == "UPDATE_COMPLETE"
    name = sandbox.client("cloudformation").describe_stack_resource(
        StackName="layered", LogicalResourceId="Fn")["StackResourceDetail"]["PhysicalResourceId"]
    config = sandbox.client("lambda").get_function_configuration(FunctionName=name)
    assert config["Description"] == "two"
    assert [layer["Arn"] for layer in config["Layers"]] == [layer_arn, POWERTOOLS]


PARAMETERISED = {
    "Parameters": {"Stage": {"Type": "String", "Default": "dev"},
                   "Size": {"Type": "String", "Default": "small"}},
    "Resources": {"Named": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": {"Fn::Sub": "/app/${Stage}/name"}, "Type": "String",
        "Value": {"Fn::Sub": ["${Stage}-${Size}-${Suffix}", {"Suffix": "x"}]}}}}}
UNNAMED = {"Unnamed": {"Type": "AWS::SSM::Parameter", "Properties": {
    "Type": "String", "Value": {"Fn::Sub": "size ${Size}"}}}}


def parameters_through_sub(handle: SandboxHandle, *, unnamed: bool = True) -> Any:
    """Create with defaults; redeploy with Stage previous (defaulted) and Size changed."""
    template = json.loads(json.dumps(PARAMETERISED))
    if unnamed:
        template["Resources"].update(UNNAMED)
        template["Outputs"] = {"UnnamedName": {"Value": {"Ref": "Unnamed"}}}
    created = outcome(lambda: deploy(handle, "params", template, "CREATE"))
    if isinstance(created, str):
        return created
    params = [{"ParameterKey": "Stage", "UsePreviousValue": True},
              {"ParameterKey": "Size", "ParameterValue": "large"}]
    updated = outcome(lambda: deploy(handle, "params", template, "UPDATE", name="two",
                                     Parameters=params))
    if isinstance(updated, str):
        return updated
    ssm = handle.client("ssm")
    named = ssm.get_parameter(Name="/app/dev/name")["Parameter"]["Value"]
    if not unnamed:
        return named
    return (named, ssm.get_parameter(Name=outputs(updated)["UnnamedName"])["Parameter"]["Value"],
            outputs(created)["UnnamedName"] == outputs(updated)["UnnamedName"])


def test_defaulted_parameters_and_sub_reach_resources(plain: SandboxHandle,
                                                      sandbox: SandboxHandle) -> None:
    assert parameters_through_sub(plain) in ("HTTP 500", "unparseable")  # SSM without Name
    plain.reset()
    assert parameters_through_sub(plain, unnamed=False) == "dev-small-x"  # !Sub not followed
    assert parameters_through_sub(sandbox) == ("dev-large-x", "size large", True)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:4566/my-bucket/a/b.template", ("my-bucket", "a/b.template")),
    ("http://localhost:4566/my-bucket/t.json", ("my-bucket", "t.json")),
    ("http://[::1]:4566/my-bucket/t.json", ("my-bucket", "t.json")),
    ("https://s3.eu-west-1.amazonaws.com/my.bucket/t.json", ("my.bucket", "t.json")),
    ("https://my-bucket.s3.eu-west-1.amazonaws.com/k/t.json", ("my-bucket", "k/t.json")),
    ("https://my-bucket.s3.amazonaws.com/t.json", ("my-bucket", "t.json")),
    ("http://my-bucket.localhost:4566/t.json", ("my-bucket", "t.json")),
    ("s3://my-bucket/t.json", ("my-bucket", "t.json")),
    ("http://127.0.0.1:4566/only-a-bucket", None),
])
def test_template_urls_name_their_bucket_and_key(url: str, expected: Any) -> None:
    from mila_sandbox.cfn_template_urls import bucket_and_key

    assert bucket_and_key(url) == expected


def create_from_a_loopback_template_url(handle: SandboxHandle) -> Any:
    s3 = handle.client("s3")
    s3.create_bucket(Bucket="templates",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="templates", Key="queue.json", Body=json.dumps(EXPORTER).encode())
    cfn = handle.client("cloudformation")
    url = f"{handle.endpoint_url}/templates/queue.json"  # what a client pointed there builds
    return outcome(lambda: cfn.create_change_set(StackName="from-url", ChangeSetName="c",
                                                 ChangeSetType="CREATE", TemplateURL=url)["Id"])


def test_a_path_style_template_url_on_the_loopback_endpoint(plain: SandboxHandle,
                                                            sandbox: SandboxHandle) -> None:
    assert create_from_a_loopback_template_url(plain) == "NoSuchBucket"
    assert create_from_a_loopback_template_url(sandbox).startswith("arn:aws:cloudformation:")
    cfn = sandbox.client("cloudformation")
    missing = f"{sandbox.endpoint_url}/templates/missing.json"
    assert outcome(lambda: cfn.create_stack(StackName="x", TemplateURL=missing)) == \
        "ValidationError"


SAM_CHILD = {"Transform": "AWS::Serverless-2016-10-31",
             "Parameters": {"Greeting": {"Type": "String"}},
             "Resources": {"Hello": {"Type": "AWS::Serverless::Function", "Properties": {
                 "Runtime": "python3.12", "Handler": "index.handler",
                 "InlineCode": "def handler(event, context):\n    return 1\n",
                 "Environment": {"Variables": {"GREETING": {"Ref": "Greeting"}}}}}},
             "Outputs": {"FunctionArn": {"Value": {"Fn::GetAtt": ["Hello", "Arn"]}}}}


def nested_sam_child(handle: SandboxHandle) -> Any:
    s3 = handle.client("s3")
    s3.create_bucket(Bucket="templates",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="templates", Key="child.json", Body=json.dumps(SAM_CHILD).encode())
    parent = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Child": {
        "Type": "AWS::Serverless::Application", "Properties": {
            "Location": "https://templates.s3.eu-west-1.amazonaws.com/child.json",
            "Parameters": {"Greeting": "hi"}}}},
        "Outputs": {"ChildFunction": {"Value": {"Fn::GetAtt": ["Child", "Outputs.FunctionArn"]}}}}
    return outcome(lambda: deploy(handle, "parent", parent, "CREATE", Capabilities=[
        "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]))


def test_a_nested_sam_application_is_transformed(plain: SandboxHandle,
                                                 sandbox: SandboxHandle) -> None:
    created = nested_sam_child(plain)
    assert isinstance(created, str) or not outputs(created).get("ChildFunction")
    created = nested_sam_child(sandbox)
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    arn = outputs(created)["ChildFunction"]
    config = sandbox.client("lambda").get_function_configuration(FunctionName=arn)
    assert config["Environment"]["Variables"] == {"GREETING": "hi"}


EXTENDED = {
    "Transform": "AWS::LanguageExtensions",
    "Parameters": {"Queues": {"Type": "CommaDelimitedList", "Default": "orders,invoices"}},
    "Resources": {
        "Fn::ForEach::Queues": ["Name", {"Ref": "Queues"}, {"Queue${Name}": {
            "Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "q-${Name}"}}}}],
        "Settings": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/settings", "Type": "String",
            "Value": {"Fn::ToJsonString": {"count": {"Fn::Length": {"Ref": "Queues"}},
                                           "region": {"Ref": "AWS::Region"}}}}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {
            "Name": "included", "Body": {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {
                "Location": "s3://snippets/openapi.yaml"}}}}}},
    "Outputs": {"Orders": {"Value": {"Fn::GetAtt": ["Queueorders", "QueueName"]}}}}
OPENAPI = """\
openapi: "3.0.1"
info: {title: included, version: "1"}
paths:
  /hello:
    get:
      responses: {"200": {description: ok}}
"""


def extended_template(handle: SandboxHandle) -> Any:
    s3 = handle.client("s3")
    s3.create_bucket(Bucket="snippets",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="snippets", Key="openapi.yaml", Body=OPENAPI.encode())
    return outcome(lambda: deploy(handle, "extended", EXTENDED, "CREATE",
                                  Parameters=[{"ParameterKey": "Queues",
                                               "ParameterValue": "orders,invoices,refunds"}]))


def test_language_extensions_and_includes(plain: SandboxHandle, sandbox: SandboxHandle) -> None:
    assert isinstance(extended_template(plain), str)  # HTTP 500
    created = extended_template(sandbox)
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    assert outputs(created) == {"Orders": "q-orders"}
    queues = sandbox.client("sqs").list_queues()["QueueUrls"]
    assert sorted(url.rsplit("/", 1)[1] for url in queues) == ["q-invoices", "q-orders",
                                                                 "q-refunds"]
    value = sandbox.client("ssm").get_parameter(Name="/settings")["Parameter"]["Value"]
    assert json.loads(value) == {"count": 3, "region": "eu-west-1"}
    (api,) = sandbox.client("apigateway").get_rest_apis()["items"]
    resources = sandbox.client("apigateway").get_resources(restApiId=api["id"])["items"]
    assert "/hello" in [r["path"] for r in resources]
    processed = sandbox.client("cloudformation").get_template(StackName="extended",
                                                              TemplateStage="Processed")
    assert "Fn::ForEach::Queues" not in json.dumps(processed["TemplateBody"])


def test_a_failure_inside_the_sandbox_is_one_readable_error(
        sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox runs in this process: make a handler fail as moto's gaps fail."""
    from botocore.exceptions import ClientError
    from moto.cloudformation.responses import CloudFormationResponse

    def broken(self: Any) -> Any:
        logical_id, resource_json = "Table", {"Type": "AWS::DynamoDB::Table"}  # noqa: F841
        raise KeyError("KeySchema")

    monkeypatch.setattr(CloudFormationResponse, "describe_stacks", broken)
    with pytest.raises(ClientError) as caught:
        sandbox.client("cloudformation").describe_stacks(StackName="orders")
    error = caught.value.response["Error"]
    assert error["Code"] == "InternalFailure"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400  # not retried
    assert error["Message"].startswith("sandbox: cloudformation DescribeStacks failed for stack "
                                       "orders, resource Table (AWS::DynamoDB::Table): "
                                       "KeyError: 'KeySchema'")
    assert "\n" not in error["Message"]


TABLE = {"Type": "AWS::DynamoDB::Table", "Properties": {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}


@pytest.mark.parametrize(("resources", "message"), [
    ({"Foo": {"Type": "AWS::Foo::Bar"}},
     "Template format error: Unrecognized resource types: [AWS::Foo::Bar]"),
    ({"Table": TABLE | {"DependsOn": "Missing"}},
     "Template format error: Unresolved resource dependencies [Missing] in the Resources "
     "block of the template"),
    ({"Table": TABLE | {"Properties2": {}}},
     "Template format error: Invalid template resource property 'Properties2'"),
    ({"Table": TABLE, "Copy": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Type": "String", "Value": {"Ref": "Nope"}}}},
     "Template format error: Unresolved resource dependencies [Nope] in the Resources block "
     "of the template"),
])
def test_malformed_templates_are_refused_at_the_call(plain: SandboxHandle, sandbox: SandboxHandle,
                                                     resources: dict[str, Any],
                                                     message: str) -> None:
    template = {"Resources": resources}
    cfn = sandbox.client("cloudformation")
    for call in (lambda: cfn.create_change_set(StackName="bad", ChangeSetName="c",
                                               ChangeSetType="CREATE",
                                               TemplateBody=json.dumps(template)),
                 lambda: cfn.create_stack(StackName="bad", TemplateBody=json.dumps(template))):
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert caught.value.response["Error"]["Message"] == message
    assert cfn.list_stacks()["StackSummaries"] == []
    if "Ref" not in json.dumps(resources):  # plain moto takes the rest
        assert outcome(lambda: deploy(plain, "bad", template, "CREATE")["StackStatus"]) == \
            "CREATE_COMPLETE"


def test_schema_invalid_properties_fail_the_resource(plain: SandboxHandle,
                                                     sandbox: SandboxHandle) -> None:
    bad_table = json.loads(json.dumps(TABLE))
    bad_table["Properties"]["KeySchema"] = []
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}, "Table": bad_table}}
    assert deploy(plain, "tables", template, "CREATE")["StackStatus"] == "CREATE_COMPLETE"
    assert deploy(sandbox, "tables", template, "CREATE")["StackStatus"] == "ROLLBACK_COMPLETE"
    events = sandbox.client("cloudformation").describe_stack_events(StackName="tables")
    (failed,) = [e for e in events["StackEvents"] if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed["LogicalResourceId"] == "Table"
    assert failed["ResourceStatusReason"].startswith(
        "Properties validation failed for resource Table with message: [#/KeySchema: ")
    # on update: a property the type does not have
    good = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}, "Table": TABLE}}
    deploy(sandbox, "fixed", good, "CREATE")
    worse = json.loads(json.dumps(good))
    worse["Resources"]["Queue"]["Properties"] = {"VisibilityTimeout": 30, "Colour": "blue"}
    updated = deploy(sandbox, "fixed", worse, "UPDATE", name="worse")
    assert updated["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason", "") for e in sandbox.client("cloudformation")
               .describe_stack_events(StackName="fixed")["StackEvents"]
               if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert any("'Colour' was unexpected" in r for r in reasons), reasons


def conditional(description: str) -> dict[str, Any]:
    return {"Parameters": {"Env": {"Type": "String", "Default": "dev"}},
            "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}},
            "Resources": {
                "Always": {"Type": "AWS::SQS::Queue"},
                "ProdTopic": {"Type": "AWS::SNS::Topic", "Condition": "IsProd"},
                "ProdSetting": {"Type": "AWS::SSM::Parameter", "Condition": "IsProd",
                                "Properties": {"Name": "/prod", "Type": "String",
                                               "Description": description,
                                               "Value": {"Ref": "ProdTopic"}}}}}


def update_conditional_resources(handle: SandboxHandle) -> Any:
    deploy(handle, "cond", conditional("one"), "CREATE")
    steps = []
    for name, env, description in (("two", "dev", "two"), ("prod", "prod", "two"),
                                   ("back", "dev", "two")):
        updated = outcome(lambda n=name, e=env, d=description: deploy(
            handle, "cond", conditional(d), "UPDATE", name=n,
            Parameters=[{"ParameterKey": "Env", "ParameterValue": e}]))
        if isinstance(updated, str):
            return updated
        names = handle.client("ssm").describe_parameters()["Parameters"]
        steps.append((updated["StackStatus"], [p["Name"] for p in names]))
    return steps


def test_resources_follow_their_condition_on_update(plain: SandboxHandle,
                                                    sandbox: SandboxHandle) -> None:
    assert update_conditional_resources(plain) in ("HTTP 500", "unparseable")
    assert update_conditional_resources(sandbox) == [("UPDATE_COMPLETE", []),
                                                     ("UPDATE_COMPLETE", ["/prod"]),
                                                     ("UPDATE_COMPLETE", [])]


def test_mila_shows_a_sandbox_failure_as_one_line_at_once(
        sandbox: SandboxHandle, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from moto.cloudformation.responses import CloudFormationResponse
    from test_mila_cloudformation import SSM_TEMPLATE, Harness

    from mila.errors import DeployError

    def broken(self: Any) -> Any:
        raise AttributeError("'Parameter' object has no attribute 'get_cfn_attribute'")

    monkeypatch.setattr(CloudFormationResponse, "create_change_set", broken)
    harness = Harness(tmp_path / "repo")
    started = time.monotonic()
    with pytest.raises(DeployError) as caught:
        harness.deploy(harness.workspace("api", {"template.yaml": SSM_TEMPLATE}))
    assert time.monotonic() - started < 10  # not retried with back-off
    assert str(caught.value.message).startswith(
        "stack shop-api-dev in eu-west-1: InternalFailure: sandbox: cloudformation "
        "CreateChangeSet failed for stack shop-api-dev: AttributeError: 'Parameter' object")
    assert "\n" not in caught.value.message
