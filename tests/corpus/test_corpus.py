"""A real-world corpus: small apps shaped like the public samples teams start from (SAM
events of every common kind, Step Functions, layers, nested applications, includes, exports
and imports, language extensions, plain CloudFormation with conditions and retained
resources), each deployed through mila on the sandbox exactly as a user would.

For every app: deploy → the plan is all ``no_changes`` → edit one file of one service → only
that service deploys → deploy → remove → no stack is left. The apps were written for mila
(modelled on the shapes of aws-samples/serverless-patterns and
aws-cloudformation/aws-cloudformation-templates, not copied from them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

CORPUS = Path(__file__).parent
#: app → the file (under services/) edited to change one service
EDITS = {
    "cfn-conditions": "storage/template.yaml",
    "cfn-inline-lambda": "hook/template.yaml",
    "exports-imports": "consumer/src/app.py",
    "language-extensions": "queues/template.yaml",
    "sam-dynamodb-stream": "stream/src/changes.py",
    "sam-globals-conditions": "report/src/report.py",
    "sam-http-api": "http/src/app.py",
    "sam-include": "rest/api/openapi.yaml",
    "sam-layers": "layered/layer/python/shared.py",
    "sam-nested-app": "parent/auth/src/auth.py",
    "sam-rest-api": "api/src/app.py",
    "sam-s3-events": "uploads/src/resize.py",
    "sam-schedule": "cron/src/tick.py",
    "sam-sns-fanout": "fanout/src/audit.py",
    "sam-sqs-worker": "worker/src/worker.py",
    "sam-step-functions": "flow/statemachine/flow.asl.json",
}


def test_every_app_is_listed() -> None:
    apps = {p.name for p in CORPUS.iterdir() if (p / "services").is_dir()}
    assert apps == set(EDITS) and len(apps) >= 15


def plan(run_mila) -> dict[str, str]:
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    assert r.exit_code == 0, r.output
    return {a["service"]: a["action"] for a in json.loads(r.stdout)["actions"]}


def edit(path: Path) -> None:
    text = path.read_text()
    if path.suffix == ".json":
        path.write_text(text.replace('"Comment": "', '"Comment": "(edited) ', 1))
    else:
        path.write_text(text + "\n# edited\n")


@pytest.mark.parametrize("app", sorted(EDITS))
def test_app_deploys_updates_and_is_removed(app: str, sandbox, project, run_mila) -> None:
    project.root_config(name="corpus", workspaces=["services/*"])
    shutil.copytree(CORPUS / app / "services", project.root / "services", dirs_exist_ok=True)
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0

    first = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert first.exit_code == 0, first.output
    services = plan(run_mila)
    assert set(services.values()) == {"no_changes"}, services

    changed = EDITS[app].split("/")[0]
    edit(project.root / "services" / EDITS[app])
    project.commit_all("edit")
    assert plan(run_mila) == {s: "deploy" if s == changed else "no_changes" for s in services}
    second = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert second.exit_code == 0, second.output
    assert set(plan(run_mila).values()) == {"no_changes"}

    removed = run_mila("remove", "-e", "dev", "--no-prompt")
    assert removed.exit_code == 0, removed.output
    stacks = sandbox.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackName"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"] == []
