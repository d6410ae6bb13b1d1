"""The built-in hashers and deployers run the contract suites plugin authors run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mila.testing.deployer_contract import DeployerContract
from mila.testing.hasher_contract import HasherContract


class TestGitHasher(HasherContract):
    @pytest.fixture
    def hasher(self, tmp_path: Path) -> Any:
        from mila_git.git import GitHasher

        return GitHasher(tmp_path / "cache")


class TestFsHasher(HasherContract):
    @pytest.fixture
    def hasher(self, tmp_path: Path) -> Any:
        from mila_git.fs import FsHasher

        return FsHasher(tmp_path / "cache")


class TestFakeDeployer(DeployerContract):
    """The test suite's own fake deployer (stacks are JSON files): the suite's reference run."""

    settings = {"deployer": "fake"}

    @pytest.fixture
    def deployer(self) -> Any:
        from mila_fake_deployer import FakeDeployer

        return FakeDeployer()

    def service_files(self, version: int) -> dict[str, str]:
        return {"handler.py": f"VERSION = {version}\n"}

    def exists(self, stack_name: str, region: str, root: Path) -> bool:
        from mila_fake_deployer import stack_file

        return stack_file(root, region, stack_name).exists()


TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Version:
    Type: String
    Default: "{version}"
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "contract-${{Version}}"
Outputs:
  TopicArn:
    Value: !Ref Topic
"""


@pytest.mark.sandbox
class TestCloudFormationDeployer(DeployerContract):
    settings = {"deployer": "cloudformation"}

    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        root = tmp_path / "repo"
        root.mkdir()
        (root / "mila.toml").write_text('[project]\nname = "contract"\ndefault_region = "eu-west-1"\n'
                                        'workspaces = ["services/*"]\n')
        return root

    @pytest.fixture
    def deployer(self, sandbox: Any, root: Path) -> Any:
        from mila_cloudformation.plugin import create_cloudformation

        from mila.config import load_config

        return create_cloudformation(load_config(root))

    def service_files(self, version: int) -> dict[str, str]:
        return {"template.yaml": TEMPLATE.format(version=version)}

    def invalid_service_files(self) -> dict[str, str]:
        # a resource type CloudFormation does not have: cfn-lint's E3006
        return {"template.yaml": TEMPLATE.format(version=1).replace("AWS::SNS::Topic",
                                                                    "AWS::SNS::Topik")}

    def exists(self, stack_name: str, region: str, root: Path) -> bool:
        from botocore.exceptions import ClientError
        from mila_aws.session import client

        try:
            stacks = client("cloudformation", region).describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return False
            raise
        return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)
