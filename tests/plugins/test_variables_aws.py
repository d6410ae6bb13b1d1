"""Environment files with SSM parameters and Secrets Manager secrets, end to end against the
sandbox in two regions: the ``cloudformation`` and ``sam`` deployers deliver the variables to
every Lambda function, and no secret value lands anywhere mila writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mila_sandbox.testing import SandboxHandle

pytestmark = pytest.mark.sandbox

REGIONS = ("eu-west-1", "us-east-1")
SECRET = "pw-Zq8v-never-stored"  # the secret's value, looked for everywhere afterwards
SECURE = "token-Kp3w-never-stored"  # a SecureString's value

CFN = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt Role.Arn
      Code: {ZipFile: "def handler(e, c):\\n    return 1\\n"}
      Environment:
        Variables:
          OWN: from-template
  Other:
    Type: AWS::SNS::Topic
Outputs:
  FunctionName:
    Value: !Ref Fn
"""

SAM = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Environment:
      Variables:
        LOG_LEVEL: from-globals
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: "def handler(e, c):\\n    return 1\\n"
Outputs:
  FunctionName:
    Value: !Ref Fn
"""


@pytest.fixture
def app(sandbox: SandboxHandle, project, run_mila):
    project.root_config(workspaces=["services/*"], backend="aws")
    project.service("api", "", files={"template.yaml": CFN})
    project.service("worker", "", files={"template.yaml": SAM})
    project.write("envs/.env", "LOG_LEVEL=info\nOWN=from-file\n")
    project.write("envs/.env.dev", "URL=https://${ssm:/app/url}/v1\nTOKEN=${ssm:/app/token}\n"
                                   "DB_PASSWORD=${secret:app/db:password}\n")
    for region in REGIONS:
        ssm = sandbox.client("ssm", region)
        ssm.put_parameter(Name="/app/url", Value=f"api.{region}.example", Type="String")
        ssm.put_parameter(Name="/app/token", Value=SECURE, Type="SecureString")
        sandbox.client("secretsmanager", region).create_secret(
            Name="app/db", SecretString=json.dumps({"password": SECRET, "user": "app"}))
    project.commit_all()
    assert run_mila("init").exit_code == 0
    r = run_mila("envs", "create", "dev", "--regions", ",".join(REGIONS))
    assert r.exit_code == 0, r.output
    return project


def function_env(sandbox: SandboxHandle, run_mila, service: str, region: str) -> dict[str, str]:
    r = run_mila("envs", "describe", "dev", "--json")
    record = next(x for x in json.loads(r.stdout)["records"]
                  if x["service"] == service and x["region"] == region)
    config = sandbox.client("lambda", region).get_function_configuration(
        FunctionName=record["outputs"]["FunctionName"])
    return dict(config["Environment"]["Variables"])


@pytest.mark.slow
def test_variables_reach_every_function_resolved_in_each_region(app, sandbox, run_mila) -> None:
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    for region in REGIONS:
        assert function_env(sandbox, run_mila, "api", region) == {
            "OWN": "from-template",  # the template's own value wins
            "LOG_LEVEL": "info", "URL": f"https://api.{region}.example/v1",
            "TOKEN": SECURE, "DB_PASSWORD": SECRET}
        worker = function_env(sandbox, run_mila, "worker", region)
        assert worker["LOG_LEVEL"] == "from-globals" and worker["DB_PASSWORD"] == SECRET
    log = (app.root / ".mila/logs/dev/api.eu-west-1.log").read_text()
    assert "warning: Fn: OWN is set by the template (Fn); its value wins over envs/.env:2" in log
    worker_log = (app.root / ".mila/logs/dev/worker.us-east-1.log").read_text()
    assert "LOG_LEVEL is set by the template (Globals)" in worker_log
    # the template CloudFormation keeps holds references, not values
    body = json.dumps(sandbox.client("cloudformation").get_template(
        StackName="shop-api-dev")["TemplateBody"])
    assert "{{resolve:ssm:/app/url:1}}" in body and "{{resolve:secretsmanager:app/db" in body

    # a new version of the parameter in one region redeploys its consumers there only
    sandbox.client("ssm", "us-east-1").put_parameter(Name="/app/url", Value="v2.example",
                                                     Type="String", Overwrite=True)
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    changed = {(a["service"], a["region"]) for a in json.loads(r.stdout)["actions"]
               if a["action"] != "no_changes"}
    assert changed == {("api", "us-east-1"), ("worker", "us-east-1")}
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    assert function_env(sandbox, run_mila, "api", "us-east-1")["URL"] == "https://v2.example/v1"


def test_env_show_reads_parameters_and_masks_secrets(app, sandbox, run_mila) -> None:
    r = run_mila("env", "show", "-e", "dev", "-s", "api", "--region", "us-east-1", "--json")
    assert r.exit_code == 0, r.output
    rows = {v["name"]: v for v in json.loads(r.stdout)}
    assert rows["URL"]["value"] == "https://api.us-east-1.example/v1"
    assert rows["URL"]["references"][0]["type"] == "String"
    assert rows["TOKEN"]["value"] == "****" and rows["TOKEN"]["references"][0]["type"] == \
        "SecureString"
    assert rows["DB_PASSWORD"]["value"] == "****" and rows["DB_PASSWORD"]["masked"]
    assert SECRET not in r.output and SECURE not in r.output


def test_a_missing_secret_in_one_region_refuses_the_plan(app, sandbox, run_mila) -> None:
    sandbox.client("secretsmanager", "us-east-1").delete_secret(
        SecretId="app/db", ForceDeleteWithoutRecovery=True)
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 2
    assert ("envs/.env.dev:3: DB_PASSWORD: secret 'app/db:password' does not exist in "
            "us-east-1") in r.output
    assert "Traceback" not in r.output
    assert sandbox.client("cloudformation", "eu-west-1").list_stacks()["StackSummaries"] == []
    assert run_mila("history", "-e", "dev").output.startswith("no history")


def everything_mila_wrote(sandbox: SandboxHandle, root: Path) -> list[tuple[str, bytes]]:
    """Every file under .mila/, every item of the state table, every object of every bucket."""
    found = [(str(p), p.read_bytes()) for p in (root / ".mila").rglob("*") if p.is_file()]
    ddb = sandbox.client("dynamodb")
    for table in ddb.list_tables()["TableNames"]:
        found += [(f"dynamodb:{table}", json.dumps(item).encode())
                  for item in ddb.scan(TableName=table)["Items"]]
    for region in REGIONS:
        s3 = sandbox.client("s3", region)
        for bucket in s3.list_buckets()["Buckets"]:
            for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                found.append((f"s3://{bucket['Name']}/{obj['Key']}", body))
    return found


@pytest.mark.slow
def test_no_secret_value_in_anything_mila_writes(app, sandbox, run_mila, tmp_path) -> None:
    outputs = []
    plan_file = tmp_path / "plan.json"
    for args in (("deploy", "-e", "dev", "--json", "--only-prompt"),
                 ("-vv", "--log-format", "json", "deploy", "-e", "dev", "--no-prompt"),
                 ("deploy", "-e", "dev", "--force", "--plan-out", str(plan_file)),
                 ("apply", str(plan_file), "--no-prompt"),
                 ("envs", "describe", "dev", "--json"), ("history", "-e", "dev", "--json"),
                 ("checksums", "--json"), ("env", "show", "-e", "dev"),
                 ("env", "show", "-e", "dev", "--json"), ("remove", "-e", "dev", "--no-prompt")):
        r = run_mila(*args)
        assert r.exit_code == 0, r.output
        outputs.append((" ".join(args), r.output.encode()))
    written = everything_mila_wrote(sandbox, app.root) + outputs
    written.append(("plan file", plan_file.read_bytes()))
    assert len(written) > 10
    for value in (SECRET, SECURE):
        assert [where for where, data in written if value.encode() in data] == []


@pytest.mark.slow
def test_create_replicate_copies_parameters_and_secrets(app, sandbox, run_mila) -> None:
    app.write("envs/.env.qa", "URL=${ssm:/qa/url}\nTOKEN=${ssm:/qa/token}\n"
                              "DB_PASSWORD=${secret:qa/db:password}\n")
    source = "eu-west-1"
    sandbox.client("ssm", source).put_parameter(Name="/qa/url", Value="qa.example", Type="String",
                                                Description="the qa url")
    sandbox.client("ssm", source).put_parameter(Name="/qa/token", Value=SECURE,
                                                Type="SecureString")
    sandbox.client("secretsmanager", source).create_secret(
        Name="qa/db", SecretString=json.dumps({"password": SECRET}))
    assert run_mila("envs", "create", "qa", "--regions", source).exit_code == 0
    r = run_mila("envs", "create-replicate", "qa", "us-east-1", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert SECRET not in r.output and SECURE not in r.output
    ssm = sandbox.client("ssm", "us-east-1")
    token = ssm.get_parameter(Name="/qa/token", WithDecryption=True)["Parameter"]
    assert (token["Type"], token["Value"]) == ("SecureString", SECURE)
    described = ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Option": "Equals", "Values": ["/qa/url"]}])["Parameters"]
    assert described[0]["Description"] == "the qa url"
    assert json.loads(sandbox.client("secretsmanager", "us-east-1").get_secret_value(
        SecretId="qa/db")["SecretString"]) == {"password": SECRET}
    r = run_mila("envs", "describe", "qa", "--json")
    record = next(x for x in json.loads(r.stdout)["records"]
                  if x["service"] == "api" and x["region"] == "us-east-1")
    env = sandbox.client("lambda", "us-east-1").get_function_configuration(
        FunctionName=record["outputs"]["FunctionName"])["Environment"]["Variables"]
    assert env["URL"] == "qa.example" and env["TOKEN"] == SECURE and env["DB_PASSWORD"] == SECRET


def test_cdk_stacks_functions_receive_the_variables(sandbox, tmp_path) -> None:
    """The cdk deployer delivers variables to each synthesized stack (no node needed: the
    cloud assembly is written here, as `cdk synth` would)."""
    from mila_aws.references import Secrets
    from mila_cdk.assembly import Assembly, Stack
    from mila_cdk.deployer import CdkDeployer
    from mila_cloudformation.deployer import StackSettings, _Run

    from mila.model import Action, ActionKind, Environment, Workspace
    from mila.protocols import DeployContext
    from mila.variables import ResolvedReference, ResolvedVariable, VariableValues

    sandbox.client("secretsmanager").create_secret(Name="cdk/db", SecretString=SECRET)
    info = Secrets().describe("cdk/db", "eu-west-1")
    assert info is not None
    ref = ResolvedReference("secret", "cdk/db", "eu-west-1", info)
    resolved = {"MODE": ResolvedVariable("MODE", "envs/.env", 1, "fast", ("fast",)),
                "DB": ResolvedVariable("DB", "envs/.env", 2, "${secret:cdk/db}", (ref,))}
    body = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"}}]}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(e, c):\n    return 1\n"}}}},
        "Outputs": {"Name": {"Value": {"Ref": "Fn"}}}}
    (tmp_path / "App.template.json").write_text(json.dumps(body))
    stack = Stack("App", tmp_path / "App.template.json", cdk_name="App")
    deployer = CdkDeployer("cdk", None, poll_initial=0.01, poll_max=0.1)
    ws = Workspace("stats", "services/stats", "service", deployer="cdk")
    context = DeployContext(
        project="shop", environment=Environment("dev", ("eu-west-1",)), region="eu-west-1",
        workspace=ws, root=tmp_path, resolved_variables=resolved,
        variables=VariableValues(resolved, environment="dev", region="eu-west-1", outputs={},
                                 fetch=lambda r: "never read"))
    action = Action("dev", "stats", "eu-west-1", ActionKind.FIRST_DEPLOY, "c1", None, "cdk")
    run = _Run(deployer, action, context, "shop-stats-dev-App")
    result = deployer._deploy_stack(run, stack, Assembly(tmp_path, [stack]),
                                    StackSettings.from_workspace(ws), "123456789012",
                                    {"App": "shop-stats-dev-App"})
    env = sandbox.client("lambda").get_function_configuration(
        FunctionName=result.outputs["Name"])["Environment"]["Variables"]
    assert env == {"MODE": "fast", "DB": SECRET}
