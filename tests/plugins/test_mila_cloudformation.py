"""The ``cloudformation`` and ``sam`` deployers against the sandbox, called directly with a
:class:`DeployContext` built here (as the orchestrator builds it).

Every test runs the code path that runs against AWS: only the endpoint differs.
"""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mila_cloudformation.deployer import StackDeployer, stack_name

from mila.config import ProjectConfig, StateConfig
from mila.errors import ConfigError, DeployError
from mila.model import Action, ActionKind, DeployResult, Environment, Workspace, frozen_mapping
from mila.parameters import resolve_parameters
from mila.protocols import DeployContext

pytestmark = pytest.mark.sandbox

PROJECT = "shop"

SSM_TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Description: a parameter and its outputs
Parameters:
  Value:
    Type: String
    Default: one
Resources:
  Param:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/value"
      Type: String
      Value: !Ref Value
Outputs:
  ParamName:
    Value: !Ref Param
    Export:
      Name: !Sub "${AWS::StackName}-ParamName"
  Region:
    Value: !Ref AWS::Region
"""

LAMBDA_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Role: !GetAtt Role.Arn
      Code: src/
Outputs:
  FunctionArn:
    Value: !GetAtt Fn.Arn
"""

SAM_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
Outputs:
  FunctionName:
    Value: !Ref Fn
"""


class Harness:
    """A project root with workspaces, and a deployer to run actions on them."""

    def __init__(self, root: Path, deployer_name: str = "cloudformation") -> None:
        self.root = root
        self.config = ProjectConfig(root=root, config_file="mila.toml", name=PROJECT,
                                    default_region="eu-west-1", workspaces=("services/*",),
                                    state=StateConfig("local"))
        self.deployer = StackDeployer(deployer_name, self.config, poll_initial=0.01,
                                      poll_max=0.1)
        self.logs: list[str] = []
        self.reports: list[tuple[str, str]] = []

    def workspace(self, name: str, files: dict[str, str], *, parameters: dict[str, str] | None = None,
                  depends_on: tuple[str, ...] = (), settings: dict[str, Any] | None = None,
                  deployer: str = "cloudformation") -> Workspace:
        folder = self.root / "services" / name
        for rel, content in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content))
        return Workspace(name=name, path=f"services/{name}", kind="service",
                         depends_on=depends_on, deployer=deployer,
                         parameters=frozen_mapping(parameters or {}),
                         settings=frozen_mapping(settings or {}),
                         config_file=f"services/{name}/mila.toml")

    def context(self, ws: Workspace | None, region: str = "eu-west-1",
                outputs: dict[str, dict[str, str]] | None = None,
                **options: Any) -> DeployContext:
        log = io.StringIO()
        self._last_log = log
        parameters = resolved_parameters(ws, region, outputs or {}) if ws else {}
        return DeployContext(
            project=PROJECT, environment=Environment("dev", ("eu-west-1", "us-east-1")),
            region=region, workspace=ws, root=self.root, parameters=frozen_mapping(parameters),
            dependency_outputs=frozen_mapping(outputs or {}),
            report=lambda phase, message="": self.reports.append((phase, message)),
            log=log, options=frozen_mapping(options))

    def deploy(self, ws: Workspace, checksum: str = "c1", region: str = "eu-west-1",
               outputs: dict[str, dict[str, str]] | None = None, **options: Any) -> DeployResult:
        action = Action("dev", ws.name, region, ActionKind.DEPLOY, checksum, None,
                        self.deployer.name)
        context = self.context(ws, region, outputs, **options)
        try:
            return self.deployer.deploy(action, context)
        finally:
            self.logs.append(self._last_log.getvalue())

    def destroy(self, service: str, region: str = "eu-west-1") -> DeployResult:
        action = Action("dev", service, region, ActionKind.DESTROY, None, "c1",
                        self.deployer.name, stack_name=stack_name(PROJECT, service, "dev"))
        context = self.context(None, region)
        try:
            return self.deployer.destroy(action, context)
        finally:
            self.logs.append(self._last_log.getvalue())

    @property
    def log(self) -> str:
        return self.logs[-1] if self.logs else ""


def resolved_parameters(ws: Workspace, region: str,
                        outputs: dict[str, dict[str, str]]) -> dict[str, str]:
    """The parameters as the core resolves them for ``DeployContext.parameters`` (deployers
    take them as they are)."""
    return resolve_parameters(ws.parameters, service=ws.name, environment="dev", region=region,
                              outputs=outputs)


@pytest.fixture
def harness(sandbox: Any, tmp_path: Path) -> Harness:
    return Harness(tmp_path / "repo")


def aws(service: str, region: str = "eu-west-1") -> Any:
    """A client of the sandbox (the environment points at it), cached like mila's own."""
    from mila_aws.session import client

    return client(service, region)


def cfn(sandbox: Any, region: str = "eu-west-1") -> Any:
    return aws("cloudformation", region)


def stack(sandbox: Any, name: str, region: str = "eu-west-1") -> dict[str, Any]:
    return cfn(sandbox, region).describe_stacks(StackName=name)["Stacks"][0]


def change_sets(sandbox: Any, name: str, region: str = "eu-west-1") -> list[dict[str, Any]]:
    return cfn(sandbox, region).list_change_sets(StackName=name)["Summaries"]


# ----------------------------------------------------------------------------- lifecycle


def test_create_returns_outputs_and_tags_the_stack(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE},
                           parameters={"Value": "v-${env}-${region}"},
                           settings={"tags": {"team": "web"}})
    result = harness.deploy(ws, checksum="abc123")

    name = "shop-api-dev"
    assert result.changed is True
    assert result.stack_name == name
    assert result.outputs == {"ParamName": f"/{name}/value", "Region": "eu-west-1"}
    described = stack(sandbox, name)
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert described["StackId"] == result.stack_id
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags == {"mila:project": "shop", "mila:env": "dev", "mila:service": "api",
                    "mila:checksum": "abc123", "team": "web"}
    ssm = aws("ssm")
    assert ssm.get_parameter(Name=f"/{name}/value")["Parameter"]["Value"] == "v-dev-eu-west-1"
    # the changes and the events went to the action log; progress went to report()
    assert "Add Param (AWS::SSM::Parameter)" in harness.log
    assert "CREATE_COMPLETE" in harness.log
    assert any(phase == "creating" for phase, _ in harness.reports)


def test_update_changes_the_stack_in_place(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE}, parameters={"Value": "one"})
    first = harness.deploy(ws)
    # (a parameter-only change is not used here: the sandbox cannot make it reach resources)
    harness.workspace("api", {"template.yaml": SSM_TEMPLATE.replace(
        "Value: !Ref Value", 'Value: !Sub "${Value}-two"')})
    second = harness.deploy(ws, checksum="c2")

    assert second.changed is True
    assert second.stack_id == first.stack_id
    assert stack(sandbox, "shop-api-dev")["StackStatus"] == "UPDATE_COMPLETE"
    assert "Modify Param (AWS::SSM::Parameter)" in harness.log
    value = aws("ssm").get_parameter(Name="/shop-api-dev/value")["Parameter"]["Value"]
    assert value == "one-two"


def test_update_refreshes_outputs(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE})
    harness.deploy(ws)
    harness.workspace("api", {"template.yaml": SSM_TEMPLATE + "  Extra:\n    Value: added\n"})
    result = harness.deploy(ws, checksum="c2")
    assert result.outputs["Extra"] == "added"


def test_no_op_update_is_success_without_changes(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE})
    first = harness.deploy(ws)
    again = harness.deploy(ws)

    assert again.changed is False
    assert again.message == "no changes"
    assert again.outputs == first.outputs
    assert "no changes" in harness.log
    # the empty change set was deleted (the executed one stays listed); the stack was not touched
    assert [c["ExecutionStatus"] for c in change_sets(sandbox, "shop-api-dev")] == [
        "EXECUTE_COMPLETE"]
    assert stack(sandbox, "shop-api-dev")["StackStatus"] == "CREATE_COMPLETE"


FAILING_TEMPLATE = """\
Resources:
  Good:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /good
      Type: String
      Value: fine
  Bad:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Role: arn:aws:iam::123456789012:role/does-not-exist
      Code:
        S3Bucket: no-such-bucket-anywhere
        S3Key: nothing.zip
"""


def test_failed_create_reports_the_resource_then_recreates(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": FAILING_TEMPLATE})
    with pytest.raises(DeployError) as failed:
        harness.deploy(ws)
    message = str(failed.value)
    assert "Bad (AWS::Lambda::Function)" in message
    assert "ROLLBACK_COMPLETE" in message
    assert "console.aws.amazon.com/cloudformation" in failed.value.details
    first_id = stack(sandbox, "shop-api-dev")["StackId"]
    assert stack(sandbox, "shop-api-dev")["StackStatus"] == "ROLLBACK_COMPLETE"

    harness.workspace("api", {"template.yaml": SSM_TEMPLATE})
    result = harness.deploy(ws, checksum="c2")
    assert result.changed is True
    assert result.stack_id != first_id
    assert "ROLLBACK_COMPLETE: the stack was never created" in harness.log
    assert stack(sandbox, "shop-api-dev")["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.filterwarnings("ignore:Unable to delete Bad")  # moto's rollback of a never-made resource
def test_failed_update_rolls_back_and_the_next_deploy_updates(sandbox: Any,
                                                              harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE})
    first = harness.deploy(ws)
    bad = FAILING_TEMPLATE.replace("Resources:\n", "", 1)
    harness.workspace("api", {"template.yaml": SSM_TEMPLATE.replace(
        "Outputs:", bad.replace("/good", "/good2") + "Outputs:")})
    with pytest.raises(DeployError) as failed:
        harness.deploy(ws, checksum="c2")
    assert "failed to update (UPDATE_ROLLBACK_COMPLETE): Bad (AWS::Lambda::Function)" \
        in str(failed.value)
    assert stack(sandbox, "shop-api-dev")["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"

    harness.workspace("api", {"template.yaml": SSM_TEMPLATE.replace(
        "Value: !Ref Value", 'Value: !Sub "${Value}-fixed"')})
    fixed = harness.deploy(ws, checksum="c3")
    assert fixed.changed is True and fixed.stack_id == first.stack_id
    assert stack(sandbox, "shop-api-dev")["StackStatus"] == "UPDATE_COMPLETE"


def test_iam_needs_the_capability(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("fn", {"template.yaml": LAMBDA_TEMPLATE, "src/app.py": "x = 1\n"},
                           settings={"capabilities": []})
    with pytest.raises(DeployError, match="InsufficientCapabilities") as failed:
        harness.deploy(ws)
    assert "capabilities = " in str(failed.value.hint)


def test_destroy_respects_termination_protection(sandbox: Any, harness: Harness) -> None:
    cfn(sandbox).create_stack(StackName="shop-api-dev", TemplateBody=SSM_TEMPLATE,
                              EnableTerminationProtection=True)
    with pytest.raises(DeployError, match="termination protection enabled") as failed:
        harness.destroy("api")
    assert "--no-enable-termination-protection --stack-name shop-api-dev" in str(failed.value)
    assert stack(sandbox, "shop-api-dev")["StackStatus"] == "CREATE_COMPLETE"


def test_destroy_deletes_the_stack_and_a_gone_stack_is_success(sandbox: Any,
                                                               harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE})
    harness.deploy(ws)

    result = harness.destroy("api")
    assert result.changed is True
    names = [s["StackName"] for s in cfn(sandbox).list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]]
    assert "shop-api-dev" not in names
    with pytest.raises(Exception, match="does not exist"):
        cfn(sandbox).describe_stacks(StackName="shop-api-dev")

    again = harness.destroy("api")
    assert again.changed is False
    assert again.message == "already gone"


def test_outputs_feed_a_dependent_stack(sandbox: Any, harness: Harness) -> None:
    shared = harness.workspace("shared", {"template.yaml": SSM_TEMPLATE})
    shared_result = harness.deploy(shared)

    api = harness.workspace("api", {"template.yaml": SSM_TEMPLATE},
                            parameters={"Value": "from ${shared.ParamName}"},
                            depends_on=("shared",))
    harness.deploy(api, outputs={"shared": dict(shared_result.outputs)})
    value = aws("ssm").get_parameter(Name="/shop-api-dev/value")["Parameter"]["Value"]
    assert value == "from /shop-shared-dev/value"


def test_missing_dependency_output_is_a_clear_error(sandbox: Any, harness: Harness) -> None:
    # the core resolves the parameters (once) before the deployer runs: the error is its
    api = harness.workspace("api", {"template.yaml": SSM_TEMPLATE},
                            parameters={"Value": "${shared.Nope}"}, depends_on=("shared",))
    with pytest.raises(ConfigError, match="'shared' has no output 'Nope'"):
        harness.deploy(api, outputs={"shared": {"ParamName": "x"}})


def test_stacks_in_two_regions_are_kept_apart(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE},
                           parameters={"Value": "${region}"})
    west = harness.deploy(ws, region="eu-west-1")
    east = harness.deploy(ws, region="us-east-1")

    assert west.outputs["Region"] == "eu-west-1"
    assert east.outputs["Region"] == "us-east-1"
    assert west.stack_id != east.stack_id
    assert ":us-east-1:" in str(east.stack_id)

    harness.destroy("api", region="us-east-1")
    assert stack(sandbox, "shop-api-dev", "eu-west-1")["StackStatus"] == "CREATE_COMPLETE"
    with pytest.raises(Exception, match="does not exist"):
        cfn(sandbox, "us-east-1").describe_stacks(StackName="shop-api-dev")


def test_template_syntax_error_names_file_and_line_and_touches_nothing(
        sandbox: Any, harness: Harness) -> None:
    broken = SSM_TEMPLATE.replace("      Type: String\n      Value: !Ref Value",
                                  "      Type: String\n     Value: [unclosed")
    ws = harness.workspace("api", {"template.yaml": broken})
    with pytest.raises(DeployError) as failed:
        harness.deploy(ws)
    assert failed.value.exit_code == 1
    assert str(failed.value).startswith("services/api/template.yaml, line 13:")
    assert cfn(sandbox).list_stacks()["StackSummaries"] == []
    assert aws("s3").list_buckets()["Buckets"] == []


def test_unknown_parameter_is_refused_before_aws(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("api", {"template.yaml": SSM_TEMPLATE}, parameters={"Nope": "x"})
    with pytest.raises(DeployError, match="Nope are set in .* but not declared"):
        harness.deploy(ws)
    assert cfn(sandbox).list_stacks()["StackSummaries"] == []


# ----------------------------------------------------------------------------- packaging


def test_lambda_code_is_packaged_once_and_not_uploaded_again(sandbox: Any,
                                                             harness: Harness) -> None:
    ws = harness.workspace("fn", {"template.yaml": LAMBDA_TEMPLATE,
                                  "src/app.py": "def handler(event, context):\n    return 1\n"})
    first = harness.deploy(ws)
    assert "FunctionArn" in first.outputs
    bucket = f"mila-artifacts-{sandbox.account_id}-eu-west-1"
    s3 = aws("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("shop/") and keys[0].endswith(".zip")
    assert "uploaded s3://" in harness.log

    # a new deployer (a new run), the same sources: nothing is uploaded again
    harness.deployer = StackDeployer("cloudformation", harness.config, poll_initial=0.01,
                                     poll_max=0.1)
    again = harness.deploy(ws, checksum="c2")
    assert "already uploaded" in harness.log
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert len(versions) == 1
    assert again.outputs == first.outputs

    # the bucket is secured like the state bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    # changed code: a new object under a new key, and the function points at it
    (harness.root / "services/fn/src/app.py").write_text("def handler(e, c):\n    return 2\n")
    harness.deploy(ws, checksum="c3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert len(keys) == 2
    code = aws("lambda").get_function(FunctionName=first.outputs["FunctionArn"])
    assert code["Configuration"]["CodeSha256"]


def test_packaging_is_deterministic_across_deploys(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("fn", {"template.yaml": LAMBDA_TEMPLATE,
                                  "src/app.py": "def handler(event, context):\n    return 1\n",
                                  "src/lib/util.py": "X = 1\n"})
    harness.deploy(ws)
    bucket = f"mila-artifacts-{sandbox.account_id}-eu-west-1"
    s3 = aws("s3")
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    first = s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    # the same sources somewhere else, touched later: the same bytes
    other = Harness(harness.root.parent / "clone")
    other.workspace("fn", {"template.yaml": LAMBDA_TEMPLATE,
                           "src/lib/util.py": "X = 1\n",
                           "src/app.py": "def handler(event, context):\n    return 1\n"})
    from mila_cloudformation.packaging import deterministic_zip

    assert deterministic_zip(other.root / "services/fn/src") == first


def test_parallel_deploys_share_one_deployer(sandbox: Any, harness: Harness) -> None:
    """The orchestrator's worker threads share one deployer: one bucket set-up, one upload of
    the same code, and every action's log holds only its own stack."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"fn{i}" for i in range(4)]
    workspaces = [harness.workspace(n, {"template.yaml": LAMBDA_TEMPLATE.replace(
        "Outputs:", f"  # {n}\nOutputs:"), "src/app.py": "x = 1\n"}) for n in names]
    logs: dict[str, io.StringIO] = {}

    def deploy(ws: Workspace, region: str) -> DeployResult:
        context = harness.context(ws, region)
        logs[f"{ws.name}/{region}"] = context.log  # type: ignore[assignment]
        return harness.deployer.deploy(Action("dev", ws.name, region, ActionKind.DEPLOY, "c1",
                                              None, "cloudformation"), context)

    jobs = [(ws, region) for ws in workspaces for region in ("eu-west-1", "us-east-1")]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: deploy(*job), jobs))
    assert all(r.changed and "FunctionArn" in r.outputs for r in results)
    for region in ("eu-west-1", "us-east-1"):
        bucket = f"mila-artifacts-{sandbox.account_id}-{region}"
        assert len(aws("s3", region).list_object_versions(Bucket=bucket)["Versions"]) == 1
    for key, log in logs.items():
        service = key.split("/")[0]
        others = [n for n in names if n != service]
        text = log.getvalue()
        assert f"shop-{service}-dev" in text
        assert not any(f"shop-{other}-dev" in text for other in others), key


def test_configured_artifacts_bucket_is_used_as_it_is(sandbox: Any, harness: Harness) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="my-artifacts-eu-west-1",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    harness.config = ProjectConfig(root=harness.root, config_file="mila.toml", name=PROJECT,
                                   default_region="eu-west-1", workspaces=("services/*",),
                                   state=StateConfig("local"),
                                   artifacts_bucket="my-artifacts-${region}")
    harness.deployer = StackDeployer("cloudformation", harness.config, poll_initial=0.01,
                                     poll_max=0.1)
    ws = harness.workspace("fn", {"template.yaml": LAMBDA_TEMPLATE, "src/app.py": "x = 1\n"})
    harness.deploy(ws)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["my-artifacts-eu-west-1"]
    assert len(s3.list_objects_v2(Bucket="my-artifacts-eu-west-1")["Contents"]) == 1

    east = harness.workspace("fn", {})
    with pytest.raises(DeployError, match="'my-artifacts-us-east-1'.*does not exist"):
        harness.deploy(east, region="us-east-1")


def test_large_template_goes_through_s3(sandbox: Any, harness: Harness) -> None:
    padding = "Metadata:\n  Padding: " + "x" * 60_000 + "\n"
    ws = harness.workspace("api", {"template.yaml": padding + SSM_TEMPLATE})
    result = harness.deploy(ws)
    assert result.outputs["Region"] == "eu-west-1"
    bucket = f"mila-artifacts-{sandbox.account_id}-eu-west-1"
    (key,) = [o["Key"] for o in aws("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert key.endswith(".template")


def test_missing_local_path_is_a_clear_error(sandbox: Any, harness: Harness) -> None:
    ws = harness.workspace("fn", {"template.yaml": LAMBDA_TEMPLATE})
    with pytest.raises(DeployError, match=r"Fn\.Code refers to 'src/', which does not exist"):
        harness.deploy(ws)


# ----------------------------------------------------------------------------- SAM


def test_sam_template_goes_through_a_change_set_with_its_transform(sandbox: Any,
                                                                  tmp_path: Path) -> None:
    harness = Harness(tmp_path / "repo", "sam")
    ws = harness.workspace("fn", {"template.yaml": SAM_TEMPLATE,
                                  "src/app.py": "def handler(event, context):\n    return 1\n"},
                           deployer="sam")
    result = harness.deploy(ws)

    assert result.changed is True
    assert result.outputs["FunctionName"]
    resources = cfn(sandbox).describe_stack_resources(StackName="shop-fn-dev")["StackResources"]
    types = {r["ResourceType"] for r in resources}
    assert "AWS::Lambda::Function" in types and "AWS::IAM::Role" in types
    # the template CloudFormation holds still has the transform: the server expanded it
    original = cfn(sandbox).get_template(StackName="shop-fn-dev",
                                         TemplateStage="Original")["TemplateBody"]
    assert "AWS::Serverless-2016-10-31" in str(original)
    assert "s3://mila-artifacts-" in str(original)
    function = aws("lambda").get_function(FunctionName=result.outputs["FunctionName"])
    assert function["Configuration"]["Handler"] == "app.handler"

    again = harness.deploy(ws)
    assert again.changed is False


# ----------------------------------------------------------------------------- the example


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"


def deploy_example(tmp_path: Path, services: list[str]) -> dict[str, dict[str, str]]:
    """Deploy services of examples/shop, found and detected the way mila finds them."""
    from mila.project import load_project

    root = tmp_path / "shop"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".mila"))
    project = load_project(root)
    outputs: dict[str, dict[str, str]] = {}
    for name in services:
        ws = project.graph.workspaces[name]
        deployer = project.deployer(ws.deployer or "")
        deployer.poll_initial, deployer.poll_max = 0.01, 0.1  # type: ignore[attr-defined]
        context = DeployContext(
            project=project.config.name, environment=Environment("dev", ("eu-west-1",)),
            region="eu-west-1", workspace=ws, root=root,
            parameters=frozen_mapping(resolved_parameters(ws, "eu-west-1", outputs)),
            dependency_outputs=frozen_mapping({d: outputs[d] for d in ws.depends_on if d in outputs}),
            log=io.StringIO())
        result = deployer.deploy(Action("dev", name, "eu-west-1", ActionKind.FIRST_DEPLOY, "c1",
                                        None, ws.deployer or ""), context)
        outputs[name] = dict(result.outputs)
    return outputs


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="examples/shop is not in this checkout")
def test_example_shop_deploys(sandbox: Any, tmp_path: Path) -> None:
    outputs = deploy_example(tmp_path, ["shared", "orders", "payments", "notifications"])
    assert outputs["shared"]["TopicArn"].startswith("arn:aws:sns:eu-west-1:")
    assert outputs["orders"]["TableName"] == "shop-orders-dev"  # SAM: Globals CodeUri, API
    assert outputs["payments"]["CaptureFunctionName"] == "shop-payments-capture-dev"
    assert outputs["notifications"]["QueueArn"].startswith("arn:aws:sqs:eu-west-1:")


IMPORTER_TEMPLATE = """\
Resources:
  Copy:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/copy"
      Type: String
      Value:
        !ImportValue
          Fn::Sub: "shop-shared-dev-ParamName"
  Encoded:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Name: !Sub "/${AWS::StackName}/encoded"
      Value:
        !Base64
          Fn::Sub: "${AWS::Region}"
"""


def test_templates_are_sent_as_json_in_long_form(sandbox: Any, harness: Harness) -> None:
    """Short-form tags over a long-form mapping (which moto's YAML loader misreads) reach
    CloudFormation as JSON: the import resolves, and GetTemplate shows the canonical JSON."""
    import base64

    harness.deploy(harness.workspace("shared", {"template.yaml": SSM_TEMPLATE}))
    harness.deploy(harness.workspace("api", {"template.yaml": IMPORTER_TEMPLATE}))
    ssm = aws("ssm")
    assert ssm.get_parameter(Name="/shop-api-dev/copy")["Parameter"]["Value"] == \
        "/shop-shared-dev/value"
    encoded = ssm.get_parameter(Name="/shop-api-dev/encoded")["Parameter"]["Value"]
    assert base64.b64decode(encoded) == b"eu-west-1"
    sent = cfn(sandbox).get_template(StackName="shop-api-dev")["TemplateBody"]
    assert isinstance(sent, dict)  # botocore decodes a JSON template (and leaves YAML as text)
    assert sent["Resources"]["Copy"]["Properties"]["Value"] == \
        {"Fn::ImportValue": {"Fn::Sub": "shop-shared-dev-ParamName"}}
