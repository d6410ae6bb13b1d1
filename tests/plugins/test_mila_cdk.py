"""The ``cdk`` deployer on the sandbox: a two-stack CDK app (``cdk synth``) deployed through
mila's CloudFormation engine after the SAM and Serverless services whose outputs it consumes;
no ``cdk bootstrap``; replans ``no_changes``; redeploys after an edit; is removed; an app that
throws fails with the CDK's own message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from frameworks import copy_services, live_stacks, require_node_tools

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture
def fw(sandbox: Any, project: Any, run_mila: Any) -> Any:
    require_node_tools("osls", "cdk")
    copy_services(project, "queue", "greeter", "stats")
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    return project


def plan(run_mila: Any) -> dict[str, str]:
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    return {a["service"]: a["action"] for a in json.loads(r.stdout)["actions"]}


def outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_app_deploys_stack_by_stack_replans_updates_and_is_removed(fw: Any, run_mila: Any,
                                                                   sandbox: Any) -> None:
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    cfn = sandbox.client("cloudformation")
    assert live_stacks(cfn) == ["fw-greeter-dev", "fw-queue-dev", "fw-stats-dev-Api",
                                "fw-stats-dev-Settings"]
    api = outputs(cfn, "fw-stats-dev-Api")
    assert api["StatsGreeter"] == outputs(cfn, "fw-greeter-dev")["GreeterFunctionName"]
    # no bootstrap: neither its version check nor its bucket
    body = cfn.get_template(StackName="fw-stats-dev-Api")["TemplateBody"]
    text = body if isinstance(body, str) else json.dumps(body)
    assert "BootstrapVersion" not in text and "cdk-hnb659fds" not in text
    # the cross-stack reference resolved through an export named after mila's stack
    function = sandbox.client("lambda").get_function(FunctionName=api["StatsFunctionName"])
    variables = function["Configuration"]["Environment"]["Variables"]
    assert variables["LIMIT_PARAMETER"] == "/fw/dev/stats/limit"
    assert variables["QUEUE_ARN"] == outputs(cfn, "fw-queue-dev")["QueueArn"]
    assert variables["LOG_LEVEL"] == "debug"  # envs/.env.dev, added by mila to every function
    exports = {e["Name"] for e in cfn.list_exports()["Exports"]}
    assert any(e.startswith("fw-stats-dev-Settings:") for e in exports)
    described = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)
    stats = next(r for r in described["records"] if r["service"] == "stats")
    assert stats["outputs"]["StatsFunctionName"] == api["StatsFunctionName"]

    assert set(plan(run_mila).values()) == {"no_changes"}

    fw.write("services/stats/lambda/stats.py",
             (fw.root / "services/stats/lambda/stats.py").read_text() + "# edited\n")
    fw.commit_all("edit")
    assert plan(run_mila) == {"queue": "no_changes", "greeter": "no_changes", "stats": "deploy"}
    before = function["Configuration"]["CodeSha256"]
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    after = sandbox.client("lambda").get_function(FunctionName=api["StatsFunctionName"])
    assert after["Configuration"]["CodeSha256"] != before
    assert set(plan(run_mila).values()) == {"no_changes"}

    r = run_mila("remove", "-e", "dev", "-s", "stats", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert live_stacks(cfn) == ["fw-greeter-dev", "fw-queue-dev"]


def test_an_app_that_throws_fails_with_the_cdk_message(fw: Any, run_mila: Any,
                                                       sandbox: Any) -> None:
    app = fw.root / "services/stats/app.js"
    app.write_text(app.read_text().replace(
        "const app = new cdk.App();",
        "const app = new cdk.App();\nthrow new Error('stats: no budget configured');"))
    fw.commit_all("broken")
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 1, r.output
    assert "cdk synth failed" in r.output
    assert "stats: no budget configured" in r.output
    assert "Traceback" not in r.output
    assert "fw-stats-dev-Api" not in live_stacks(sandbox.client("cloudformation"))
