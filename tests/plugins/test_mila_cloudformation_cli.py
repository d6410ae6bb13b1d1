"""The ``cloudformation`` deployer under the real ``mila deploy``/``remove`` flow, on the sandbox
with the ``aws`` state backend: detection, outputs recorded and passed to dependents in each
region, no changes, a template syntax error (exit 1, file and line, AWS untouched), remove."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.sandbox

REGIONS = ("eu-west-1", "us-east-1")

SHARED = """\
Resources:
  Param:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/shared"
      Type: String
      Value: !Ref AWS::Region
Outputs:
  ParamName:
    Value: !Ref Param
"""

API = """\
Parameters:
  SharedParam:
    Type: String
  Stage:
    Type: String
Resources:
  Param:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/api"
      Type: String
      Value: !Sub "${SharedParam} ${Stage}"
Outputs:
  Used:
    Value: !Sub "${SharedParam} ${Stage}"
"""


@pytest.fixture
def shop(sandbox: Any, project: Any, run_mila: Any) -> Any:
    project.root_config(workspaces=["infra/*", "services/*"], backend="aws")
    project.write("infra/shared/template.yaml", SHARED)  # detected: no mila.toml at all
    project.service("api", 'depends_on = ["shared"]\n'
                           'parameters = { SharedParam = "${shared.ParamName}", '
                           'Stage = "${env}-${region}" }\n',
                    files={"template.yaml": API})
    project.commit_all()
    assert run_mila("init").exit_code == 0
    r = run_mila("envs", "create", "dev", "--regions", ",".join(REGIONS))
    assert r.exit_code == 0, r.output
    return project


def cfn(region: str) -> Any:
    from mila_aws.session import client

    return client("cloudformation", region)


def test_deploy_records_outputs_and_feeds_dependents(shop: Any, run_mila: Any) -> None:
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    described = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)
    text = json.dumps(described)
    for region in REGIONS:
        stack = cfn(region).describe_stacks(StackName="shop-api-dev")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert outputs["Used"] == f"/shop-shared-dev/shared dev-{region}"
        assert f"dev-{region}" in text  # the recorded outputs are shown
    assert "shop-shared-dev" in text

    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    actions = {a["action"] for a in json.loads(r.stdout)["actions"]}
    assert actions == {"no_changes"}

    # --force: every stack gets an empty change set, which is success with nothing to do
    r = run_mila("deploy", "-e", "dev", "--no-prompt", "--force")
    assert r.exit_code == 0, r.output


def test_syntax_error_refuses_the_plan_and_leaves_aws_and_state_alone(shop: Any,
                                                                       run_mila: Any) -> None:
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    before = cfn("eu-west-1").describe_stacks(StackName="shop-api-dev")["Stacks"][0]
    described = run_mila("envs", "describe", "dev", "--json").stdout
    shop.write("services/api/template.yaml", API.replace("      Type: String\n      Value",
                                                         "      Type: String\n     Value"))
    shop.commit_all("broken")
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 2  # refused at plan time: nothing locked, recorded or sent
    assert "services/api/template.yaml, line 12" in r.output
    assert run_mila("envs", "describe", "dev", "--json").stdout == described
    after = cfn("eu-west-1").describe_stacks(StackName="shop-api-dev")["Stacks"][0]
    assert after.get("LastUpdatedTime") == before.get("LastUpdatedTime")
    assert after["StackStatus"] == before["StackStatus"]


def test_remove_deletes_the_stacks(shop: Any, run_mila: Any) -> None:
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    r = run_mila("remove", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    for region in REGIONS:
        live = [s["StackName"] for s in cfn(region).list_stacks()["StackSummaries"]
                if s["StackStatus"] != "DELETE_COMPLETE"]
        assert live == []
