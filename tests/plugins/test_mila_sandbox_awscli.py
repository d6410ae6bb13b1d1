"""The real ``aws`` CLI against the sandbox, with the endpoint exactly as ``mila sandbox``
prints it (``http://127.0.0.1:PORT``): what a user's own CI does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mila_sandbox.testing import SandboxHandle

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
AWS = Path(sys.executable).parent / "aws"

TEMPLATE = textwrap.dedent("""\
    AWSTemplateFormatVersion: "2010-09-09"
    Parameters:
      Stage:
        Type: String
        Default: dev
      Size:
        Type: String
        Default: small
    Resources:
      Setting:
        Type: AWS::SSM::Parameter
        Properties:
          Name: !Sub "/cli/${Stage}/size"
          Type: String
          Value: !Sub "size-${Size}"
      Queue:
        Type: AWS::SQS::Queue
    Outputs:
      QueueUrl:
        Value: !Ref Queue
        Export:
          Name: !Sub "${AWS::StackName}-QueueUrl"
    """)


def next_second() -> None:
    """`aws cloudformation deploy` names its change set after the epoch second, and AWS keeps
    the executed one: two deploys of one stack within a second collide (AlreadyExists) — on
    AWS too, where a deploy never takes under a second; the sandbox is that fast."""
    time.sleep(1.0 - time.time() % 1.0 + 0.05)


def aws(handle: SandboxHandle, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(handle.environment())  # what `mila sandbox` prints
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    return subprocess.run([str(AWS), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_aws_cloudformation_deploy_through_s3(sandbox: SandboxHandle, tmp_path: Path) -> None:
    if not AWS.exists():
        pytest.skip("the aws CLI is not installed (pip install awscli)")
    assert sandbox.endpoint_url.startswith("http://127.0.0.1:")
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    aws(sandbox, "s3", "mb", "s3://cli-artifacts", cwd=tmp_path).check_returncode()
    deploy = ("cloudformation", "deploy", "--template-file", "template.yaml", "--stack-name",
              "cli", "--s3-bucket", "cli-artifacts", "--no-fail-on-empty-changeset")
    first = aws(sandbox, *deploy, cwd=tmp_path)  # TemplateURL path-style on 127.0.0.1
    assert first.returncode == 0, first.stderr
    next_second()
    again = aws(sandbox, *deploy, cwd=tmp_path)  # UsePreviousValue for defaulted parameters
    assert again.returncode == 0, again.stderr
    next_second()
    changed = aws(sandbox, *deploy, "--parameter-overrides", "Size=large", cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    got = aws(sandbox, "ssm", "get-parameter", "--name", "/cli/dev/size", cwd=tmp_path)
    assert json.loads(got.stdout)["Parameter"]["Value"] == "size-large"  # reached through !Sub
    stacks = json.loads(aws(sandbox, "cloudformation", "describe-stacks", "--stack-name", "cli",
                            cwd=tmp_path).stdout)["Stacks"]
    assert stacks[0]["StackStatus"] == "UPDATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stacks[0]["Parameters"]}
    assert parameters == {"Stage": "dev", "Size": "large"}
