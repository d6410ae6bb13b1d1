"""`deploy`/`apply`/`remove --json`: one result document when the run ends; a failure printed
once, on stderr."""

from __future__ import annotations

import json

import pytest


def shown(text: str) -> str:
    """What mila printed itself (without the quoted tail of the action's log)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("  | "))


@pytest.fixture
def shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config()
    project.service("api", 'deployer = "fake"\n')
    project.service("web", 'deployer = "fake"\n')
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev").exit_code == 0
    return project


def test_deploy_json_prints_one_result_document(shop, run_mila) -> None:
    r = run_mila("deploy", "-e", "dev", "--json", "--yes")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds the document and nothing else
    assert doc["version"] == 1 and doc["command"] == "deploy" and doc["status"] == "succeeded"
    assert doc["exit_code"] == 0 and doc["environment"] == "dev"
    assert [a["action"] for a in doc["plan"]["actions"]] == ["first_deploy", "first_deploy"]
    api = next(a for a in doc["actions"] if a["service"] == "api")
    assert api["status"] == "succeeded" and api["error"] is None
    assert api["outputs"] == {"Url": "https://api.eu-west-1.example"}
    assert api["log"].endswith("api.eu-west-1.log") and api["duration_seconds"] >= 0
    assert "first_deploy" in r.stderr  # the plan table went to stderr

    (shop.root / "services" / "web" / "FAIL").write_text("")
    r = run_mila("deploy", "-e", "dev", "--json", "--yes")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    by = {a["service"]: a for a in doc["actions"]}
    assert by["api"]["status"] == "unchanged"
    assert by["api"]["outputs"] == {"Url": "https://api.eu-west-1.example"}
    assert by["web"]["status"] == "failed" and by["web"]["error"] == "web refused to deploy"
    assert by["web"]["outputs"] == {}
    # the failure is printed once, on stderr, in the summary (not in progress lines nor logs)
    assert shown(r.stderr).count("web refused to deploy") == 1
    assert "web in eu-west-1 failed: web refused to deploy" in r.stderr
    assert "fake failure log line" in r.stderr  # the log's tail


def test_plan_only_with_only_prompt_and_json_needs_no_prompt_without_a_terminal(shop, run_mila):
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt", "--detailed-exitcode")
    assert r.exit_code == 4
    plan = json.loads(r.stdout)
    assert "status" not in plan and len(plan["actions"]) == 2
    r = run_mila("deploy", "-e", "dev", "--json")
    assert r.exit_code == 2 and "no terminal to confirm the plan" in r.output
    assert r.stdout == ""


def test_nothing_to_do_apply_and_remove_json(shop, run_mila, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    assert run_mila("deploy", "-e", "dev", "--plan-out", str(plan)).exit_code == 0
    r = run_mila("apply", str(plan), "--json", "--yes")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["command"] == "apply" and {a["status"] for a in doc["actions"]} == {"succeeded"}
    r = run_mila("deploy", "-e", "dev", "--json", "--yes")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["status"] == "nothing_to_do"
    assert {a["status"] for a in doc["actions"]} == {"unchanged"}
    r = run_mila("remove", "-e", "dev", "-s", "web", "--json", "--yes")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["command"] == "remove"
    assert [(a["service"], a["action"], a["status"], a["outputs"]) for a in doc["actions"]] == \
        [("web", "destroy", "succeeded", {})]


def test_plain_failure_line_without_json(shop, run_mila) -> None:
    (shop.root / "services" / "web" / "FAIL").write_text("")
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 1
    assert shown(r.output).count("web refused to deploy") == 1, r.output
    assert "web in eu-west-1 failed" in r.stderr


def test_markdown_plan_for_a_pull_request_comment(shop, run_mila, tmp_path) -> None:
    out = tmp_path / "plan.md"
    r = run_mila("deploy", "-e", "dev", "--only-prompt", "--markdown", str(out))
    assert r.exit_code == 0
    assert out.read_text().splitlines() == [
        "### mila plan for `dev`", "", "| service | eu-west-1 |", "|---|---|",
        "| api | **first_deploy** |", "| web | **first_deploy** |", "",
        "2 to deploy, 0 unchanged, 0 to destroy"]
