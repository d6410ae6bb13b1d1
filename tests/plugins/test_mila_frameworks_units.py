"""The framework deployers without Node.js or AWS: the template rewrite that points a
Serverless Framework template at mila's artifacts bucket, lock files as checksum inputs,
detection, and the errors when Node.js or a tool is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mila_node import Tool, find_executable, lock_files
from mila_serverless.deployer import packaged_template, use_local_artifacts
from mila_serverless.plugin import detect

from mila.errors import DeployError

ARTIFACTS = "serverless/svc/dev/1700000000000-2026-01-01T00:00:00.000Z"
TEMPLATE = {
    "Resources": {
        "ServerlessDeploymentBucket": {"Type": "AWS::S3::Bucket"},
        "ServerlessDeploymentBucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "ServerlessDeploymentBucket"}}},
        "FnLambdaFunction": {"Type": "AWS::Lambda::Function", "Properties": {
            "Code": {"S3Bucket": {"Ref": "ServerlessDeploymentBucket"},
                     "S3Key": f"{ARTIFACTS}/fn.zip"}, "Handler": "h.main"}},
        "DepsLambdaLayer": {"Type": "AWS::Lambda::LayerVersion", "Properties": {
            "Content": {"S3Bucket": {"Ref": "ServerlessDeploymentBucket"},
                        "S3Key": f"{ARTIFACTS}/deps.zip"}}},
    },
    "Outputs": {"ServerlessDeploymentBucketName": {"Value": {"Ref": "ServerlessDeploymentBucket"}},
                "Kept": {"Value": "x"}},
}


def test_artifacts_point_at_the_local_zips_and_the_framework_bucket_is_gone() -> None:
    body = use_local_artifacts(TEMPLATE, ARTIFACTS, "t.json")
    assert set(body["Resources"]) == {"FnLambdaFunction", "DepsLambdaLayer"}
    assert body["Resources"]["FnLambdaFunction"]["Properties"]["Code"] == "fn.zip"
    assert body["Resources"]["DepsLambdaLayer"]["Properties"]["Content"] == "deps.zip"
    assert list(body["Outputs"]) == ["Kept"]
    assert "ServerlessDeploymentBucket" in json.dumps(TEMPLATE)  # the input is not modified


def test_an_artifact_mila_cannot_repoint_is_refused_by_name() -> None:
    template = json.loads(json.dumps(TEMPLATE))
    template["Resources"]["Other"] = {"Type": "Custom::Thing", "Properties": {
        "Where": {"Fn::Sub": f"s3://${{ServerlessDeploymentBucket}}/{ARTIFACTS}/x.zip"}}}
    with pytest.raises(DeployError) as info:
        use_local_artifacts(template, ARTIFACTS, "t.json")
    assert "t.json: Other still refers to the framework's deployment bucket" in info.value.message


def test_packaged_template_takes_the_frameworks_stack_name(tmp_path: Path) -> None:
    (tmp_path / "cloudformation-template-update-stack.json").write_text(json.dumps(TEMPLATE))
    (tmp_path / "serverless-state.json").write_text(json.dumps({
        "service": {"service": "svc", "serviceObject": {"name": "svc"},
                    "provider": {"stage": "dev"}},
        "package": {"artifactDirectoryName": ARTIFACTS}}))
    template = packaged_template(tmp_path, tmp_path.parent)
    assert template.framework_stack_name == "svc-dev"
    assert template.path.parent == tmp_path  # the zips resolve beside it


def test_a_missing_package_step_output_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="left no readable template"):
        packaged_template(tmp_path, tmp_path)


def test_detects_every_serverless_config_name(tmp_path: Path) -> None:
    assert not detect(tmp_path)
    for name in ("serverless.yml", "serverless.yaml", "serverless.ts", "serverless.js"):
        (tmp_path / name).write_text("service: x\n")
        assert detect(tmp_path)
        (tmp_path / name).unlink()


def test_lock_files_from_the_service_up_to_the_root(tmp_path: Path) -> None:
    service = tmp_path / "services" / "api"
    service.mkdir(parents=True)
    (tmp_path / "package-lock.json").write_text("{}")
    (service / "yarn.lock").write_text("")
    (tmp_path.parent / "package-lock.json").write_text("{}")  # above the root: not ours
    try:
        assert lock_files(service, tmp_path) == [service / "yarn.lock",
                                                 tmp_path / "package-lock.json"]
    finally:
        (tmp_path.parent / "package-lock.json").unlink()


def test_missing_node_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeployError) as info:
        find_executable(Tool(("osls",), "osls", "serverless"), tmp_path, tmp_path)
    assert "the serverless deployer needs Node.js, and `node` is not on PATH" in info.value.message


def test_missing_tool_and_npx_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = bin_dir / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(DeployError) as info:
        find_executable(Tool(("cdk",), "aws-cdk", "cdk"), tmp_path, tmp_path)
    assert "found no aws-cdk installed" in info.value.message
    assert "`npx` (npm) is not on PATH" in info.value.message
    assert "npm install --save-dev aws-cdk" in (info.value.hint or "")


def test_the_projects_own_tool_comes_first(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    service = tmp_path / "services" / "api"
    tool = tmp_path / "node_modules" / ".bin" / "osls"
    service.mkdir(parents=True)
    tool.parent.mkdir(parents=True)
    tool.write_text("")
    assert find_executable(Tool(("osls",), "osls", "serverless"), service, tmp_path) == [str(tool)]


# ----------------------------------------------------------------------------- cdk assemblies

BOOTSTRAP = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"


def write_assembly(folder: Path, *, docker: bool = False) -> None:
    (folder / "asset.abc").mkdir(parents=True)
    (folder / "asset.abc" / "h.py").write_text("def main(e, c): return 1\n")
    files = {"abc": {"source": {"path": "asset.abc", "packaging": "zip"},
                     "destinations": {"d": {"bucketName": BOOTSTRAP, "objectKey": "abc.zip"}}}}
    assets = {"version": "55.0.0", "files": files,
              "dockerImages": {"img": {"displayName": "Api/Image"}} if docker else {}}
    (folder / "Api.assets.json").write_text(json.dumps(assets))
    template = {
        "Parameters": {"BootstrapVersion": {"Type": "String"}},
        "Rules": {"CheckBootstrapVersion": {"Assertions": []}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Code": {"S3Bucket": {"Fn::Sub": BOOTSTRAP}, "S3Key": "abc.zip"},
            "Environment": {"Variables": {"X": {"Fn::ImportValue": "Base:ExportsOutputRefQ"}}}}}},
        "Outputs": {"O": {"Value": "v", "Export": {"Name": "Api:ExportsOutputRefFn"}}},
    }
    (folder / "Api.template.json").write_text(json.dumps(template))
    (folder / "Base.template.json").write_text(json.dumps({"Resources": {}}))
    manifest = {"artifacts": {
        "Api.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Api.assets.json"}},
        "Api": {"type": "aws:cloudformation:stack", "dependencies": ["Base", "Api.assets"],
                "properties": {"templateFile": "Api.template.json"}},
        "Base": {"type": "aws:cloudformation:stack",
                 "properties": {"templateFile": "Base.template.json"}}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_assembly_stacks_come_in_dependency_order(tmp_path: Path) -> None:
    from mila_cdk.assembly import read_assembly

    write_assembly(tmp_path)
    assembly = read_assembly(tmp_path, "cdk.out")
    assert [s.artifact_id for s in assembly.stacks] == ["Base", "Api"]
    assert set(assembly.assets) == {"abc.zip"}


def test_rewrite_publishes_assets_to_milas_bucket_without_bootstrap(tmp_path: Path) -> None:
    from mila_cdk.assembly import read_assembly, rewrite

    write_assembly(tmp_path)
    assembly = read_assembly(tmp_path, "cdk.out")
    uploaded: list[tuple[bytes, str]] = []

    def upload(data: bytes, extension: str) -> str:
        uploaded.append((data, extension))
        return f"p/sha{len(uploaded)}{extension}"

    body = json.loads((tmp_path / "Api.template.json").read_text())
    names = {"Api": "fw-stats-dev-Api", "Base": "fw-stats-dev-Base"}
    fixed = rewrite(body, assembly, "mila-artifacts-1-eu-west-1", upload, "Api", names=names)
    props = fixed["Resources"]["Fn"]["Properties"]
    assert props["Code"] == {"S3Bucket": {"Fn::Sub": "mila-artifacts-1-eu-west-1"},
                             "S3Key": "p/sha1.zip"}
    assert props["Environment"]["Variables"]["X"] == {
        "Fn::ImportValue": "fw-stats-dev-Base:ExportsOutputRefQ"}
    assert fixed["Outputs"]["O"]["Export"]["Name"] == "fw-stats-dev-Api:ExportsOutputRefFn"
    assert "Parameters" not in fixed and "Rules" not in fixed
    assert len(uploaded) == 1 and uploaded[0][1] == ".zip"


def test_docker_image_assets_are_refused_clearly(tmp_path: Path) -> None:
    from mila_cdk.assembly import read_assembly

    write_assembly(tmp_path, docker=True)
    with pytest.raises(DeployError) as info:
        read_assembly(tmp_path, "cdk.out")
    assert "Docker image assets are not supported (Api/Image)" in info.value.message


def test_outputs_of_all_stacks_merged_and_shared_keys_qualified(tmp_path: Path) -> None:
    from mila_cdk.assembly import Stack
    from mila_cdk.deployer import merged_outputs

    from mila.model import DeployResult

    a, b = Stack("A", tmp_path / "a"), Stack("B", tmp_path / "b")
    merged = merged_outputs([
        (a, DeployResult(outputs={"Name": "a", "Url": "u", "ExportsOutputRefX1": "internal"})),
        (b, DeployResult(outputs={"Name": "b"}))])
    assert merged == {"A.Name": "a", "Url": "u", "B.Name": "b"}


def test_the_iam_policy_covers_framework_stacks(project, run_mila) -> None:  # type: ignore[no-untyped-def]
    project.root_config(workspaces=["services/*"], backend="aws")
    project.write("services/greeter/serverless.yml", "service: greeter\n")
    project.write("services/stats/cdk.json", '{"app": "node app.js"}\n')
    r = run_mila("init", "--print-policy")
    assert r.exit_code == 0, r.output
    statements = {s["Sid"]: s for s in json.loads(r.stdout)["Statement"]}
    # the framework names serverless stacks <service>-<stage>: not under the project's prefix
    assert "arn:aws:cloudformation:*:*:stack/*/*" in statements["MilaServerlessStacks"]["Resource"]
    assert "cloudformation:CreateChangeSet" in statements["MilaServerlessStacks"]["Action"]
    assert statements["MilaCdkFindStacks"]["Action"] == ["cloudformation:DescribeStacks"]
    assert "MilaArtifacts" in statements


def test_a_nested_stack_template_is_rewritten_then_published(tmp_path: Path) -> None:
    from mila_cdk.assembly import read_assembly, rewrite

    write_assembly(tmp_path)
    nested = {"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "Code": {"S3Bucket": {"Fn::Sub": BOOTSTRAP}, "S3Key": "abc.zip"}}}}}
    (tmp_path / "ApiChild.nested.template.json").write_text(json.dumps(nested))
    assets = json.loads((tmp_path / "Api.assets.json").read_text())
    assets["files"]["def"] = {"source": {"path": "ApiChild.nested.template.json",
                                         "packaging": "file"},
                              "destinations": {"d": {"bucketName": BOOTSTRAP,
                                                     "objectKey": "def.json"}}}
    (tmp_path / "Api.assets.json").write_text(json.dumps(assets))
    parent = {"Resources": {"Child": {"Type": "AWS::CloudFormation::Stack", "Properties": {
        "TemplateURL": {"Fn::Join": ["", ["https://s3.", {"Ref": "AWS::Region"}, ".",
                                          {"Ref": "AWS::URLSuffix"}, "/",
                                          {"Fn::Sub": BOOTSTRAP}, "/def.json"]]}}}}}
    uploaded: dict[str, bytes] = {}

    def upload(data: bytes, extension: str) -> str:
        key = f"k{len(uploaded)}{extension}"
        uploaded[key] = data
        return key

    fixed = rewrite(parent, read_assembly(tmp_path, "cdk.out"), "mila-b", upload, "Api")
    assert list(uploaded) == ["k0.zip", "k1.json"]  # the child's own asset first
    assert json.loads(uploaded["k1.json"])["Resources"]["Fn"]["Properties"]["Code"] == {
        "S3Bucket": {"Fn::Sub": "mila-b"}, "S3Key": "k0.zip"}
    url = fixed["Resources"]["Child"]["Properties"]["TemplateURL"]["Fn::Join"][1]
    assert url[-2:] == [{"Fn::Sub": "mila-b"}, "/k1.json"]


def test_validate_refuses_the_plan_when_node_is_missing(project, run_mila,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project.root_config(workspaces=["services/*"])
    project.write("services/greeter/serverless.yml", "service: greeter\n")
    project.write("services/stats/cdk.json", '{"app": "node app.js"}\n')
    project.commit_all()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    r = run_mila("validate")
    assert r.exit_code == 2, r.output
    assert "the serverless deployer needs Node.js, and `node` is not on PATH" in r.output
    assert "the cdk deployer needs Node.js" in r.output
    assert "Traceback" not in r.output


def test_files_packaged_from_outside_the_service_are_inputs(tmp_path: Path) -> None:
    from mila_serverless.plugin import inputs

    from mila.model import Workspace

    (tmp_path / "shared" / "deep").mkdir(parents=True)
    (tmp_path / "shared" / "deep" / "util.py").write_text("x = 1\n")
    (tmp_path / "other.py").write_text("")
    service = tmp_path / "services" / "api"
    service.mkdir(parents=True)
    (service / "serverless.yml").write_text(
        "service: api\npackage:\n  patterns: ['!**', handler.py]\n"
        "functions:\n  f:\n    handler: h.main\n    package:\n"
        "      patterns: ['../../shared/**', '!../../shared/x']\n")
    (tmp_path / "package-lock.json").write_text("{}")
    ws = Workspace("api", "services/api", "service", deployer="serverless")
    found = inputs(ws, tmp_path)
    assert found == [tmp_path / "package-lock.json",
                     service / "../../shared/deep/util.py"]
