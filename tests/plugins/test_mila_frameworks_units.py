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
