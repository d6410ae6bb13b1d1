"""The ``serverless`` deployer on the sandbox: a Serverless Framework service (``osls
package``) deployed through mila's CloudFormation engine next to a SAM service whose output it
consumes; replans ``no_changes``; redeploys after an edit; is removed; a broken
``serverless.yml`` fails with the framework's own message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from frameworks import copy_services, live_stacks, require_node_tools

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture
def fw(sandbox: Any, project: Any, run_mila: Any) -> Any:
    require_node_tools("osls")
    copy_services(project, "queue", "greeter")
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    return project


def plan(run_mila: Any) -> dict[str, str]:
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    return {a["service"]: a["action"] for a in json.loads(r.stdout)["actions"]}


def test_deploys_passes_outputs_replans_updates_and_removes(fw: Any, run_mila: Any,
                                                            sandbox: Any) -> None:
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    cfn = sandbox.client("cloudformation")
    stack = cfn.describe_stacks(StackName="fw-greeter-dev")["Stacks"][0]  # the framework's name
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    queue = cfn.describe_stacks(StackName="fw-queue-dev")["Stacks"][0]
    queue_url = {o["OutputKey"]: o["OutputValue"] for o in queue["Outputs"]}["QueueUrl"]
    assert outputs["GreeterQueueUrl"] == queue_url  # the SAM output reached serverless.yml
    assert "ServerlessDeploymentBucketName" not in outputs
    resources = {r["LogicalResourceId"] for r in
                 cfn.describe_stack_resources(StackName="fw-greeter-dev")["StackResources"]}
    assert "ServerlessDeploymentBucket" not in resources  # artifacts live in mila's bucket
    function = sandbox.client("lambda").get_function(FunctionName=outputs["GreeterFunctionName"])
    variables = function["Configuration"]["Environment"]["Variables"]
    assert variables["QUEUE_URL"] == queue_url
    assert variables["GREETING"] == "hello from mila"  # envs/.env, through ${env:GREETING}
    assert variables["LOG_LEVEL"] == "debug"  # envs/.env.dev, added by mila to every function
    assert any(b["Name"].startswith("mila-artifacts-")
               for b in sandbox.client("s3").list_buckets()["Buckets"])

    assert plan(run_mila) == {"queue": "no_changes", "greeter": "no_changes"}

    fw.write("services/greeter/handler.py",
             (fw.root / "services/greeter/handler.py").read_text() + "# edited\n")
    fw.commit_all("edit")
    assert plan(run_mila) == {"queue": "no_changes", "greeter": "deploy"}
    code_before = function["Configuration"]["CodeSha256"]
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    after = sandbox.client("lambda").get_function(FunctionName=outputs["GreeterFunctionName"])
    assert after["Configuration"]["CodeSha256"] != code_before
    assert plan(run_mila) == {"queue": "no_changes", "greeter": "no_changes"}

    # the lock file pins the framework: a new version redeploys
    lock = fw.root / "package-lock.json"
    lock.write_text(lock.read_text().replace('"version": "4.3.1"', '"version": "4.3.2"', 1))
    fw.commit_all("bump")
    assert plan(run_mila)["greeter"] == "deploy"

    r = run_mila("remove", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert live_stacks(cfn) == []


def test_invalid_serverless_yml_fails_with_the_frameworks_message(fw: Any, run_mila: Any,
                                                                  sandbox: Any) -> None:
    path = fw.root / "services/greeter/serverless.yml"
    path.write_text(path.read_text().replace("    handler: handler.greet\n",
                                             "    handler: handler.greet\n    events: 12\n"))
    fw.commit_all("broken")
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 1, r.output
    assert "serverless package failed" in r.output
    assert "Configuration error at 'functions.greet.events" in r.output  # the framework's words
    assert "Traceback" not in r.output
    assert live_stacks(sandbox.client("cloudformation")) == ["fw-queue-dev"]
