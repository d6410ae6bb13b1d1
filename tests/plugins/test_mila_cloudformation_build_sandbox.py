"""A built Python function deployed to the sandbox: the zip holds a registry dependency and a
workspace package, and an edit to the package reaches the deployed code.

The sandbox has no Docker, so the function is not run: the test reads the deployed zip (the
artifact whose sha256 is the function's ``CodeSha256``) from the artifacts bucket.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from typing import Any

import pytest

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]  # pip installs from PyPI

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: build-api-dev
      CodeUri: src
      Handler: app.handler
      Runtime: python3.12
      Architectures: [arm64]
"""


def deployed_zip(region: str = "eu-west-1") -> tuple[str, dict[str, bytes]]:
    """The function's CodeSha256 and the files of the artifact it was deployed from."""
    from mila_aws.session import client

    sha = client("lambda", region).get_function_configuration(FunctionName="build-api-dev")[
        "CodeSha256"]
    s3 = client("s3", region)
    for bucket in s3.list_buckets()["Buckets"]:
        if not bucket["Name"].startswith("mila-artifacts-"):
            continue
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            data = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
            if base64.b64encode(hashlib.sha256(data).digest()).decode() == sha:
                archive = zipfile.ZipFile(io.BytesIO(data))
                return sha, {n: archive.read(n) for n in archive.namelist()}
    raise AssertionError(f"no artifact with CodeSha256 {sha}")


def test_a_workspace_package_and_a_registry_dependency_reach_the_lambda(
        sandbox: Any, project, run_mila) -> None:
    project.root_config(name="build")
    project.package("common", files={"common/__init__.py": "GREETING = 'hello'\n"})
    project.service("api", files={
        "template.yaml": TEMPLATE,
        "pyproject.toml": '[project]\nname = "api"\ndependencies = ["common"]\n',
        "src/app.py": "import six\nimport common\n\ndef handler(e, c):\n"
                      "    return common.GREETING\n",
        "src/requirements.txt": "six==1.17.0\ncommon\n",  # common: never from a registry
    })
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    sha, files = deployed_zip()
    assert {"app.py", "six.py", "common/__init__.py"} <= set(files)
    assert files["common/__init__.py"] == b"GREETING = 'hello'\n"
    assert any(n.startswith("six-1.17.0.dist-info/") for n in files)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in files)

    project.write("packages/common/common/__init__.py", "GREETING = 'bonjour'\n")
    project.commit_all("edit common")
    plan = run_mila("deploy", "-e", "dev", "--json", "--only-prompt").json
    assert [a["action"] for a in plan["actions"]] == ["deploy"]
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    new_sha, new_files = deployed_zip()
    assert new_sha != sha
    assert new_files["common/__init__.py"] == b"GREETING = 'bonjour'\n"

    # nothing changed: no rebuild, the same zip, no new upload
    r = run_mila("deploy", "-e", "dev", "--no-prompt", "--force")
    assert r.exit_code == 0, r.output
    assert deployed_zip()[0] == new_sha
    log = (project.root / ".mila/logs/dev/api.eu-west-1.log").read_text()
    assert "already uploaded" in log and "uploaded s3://" not in log.replace("already uploaded", "")
