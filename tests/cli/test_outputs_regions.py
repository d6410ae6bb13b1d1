"""`mila outputs`, `envs describe` at 80 columns, and `--region` on deploy, apply, remove,
history and outputs (fake deployer, local state)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def two_regions(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config()
    project.package("common")
    project.service("orders-api", 'deployer = "fake"\n')
    project.service("notifications", 'deployer = "fake"\n')
    assert run_mila("init").exit_code == 0
    r = run_mila("envs", "create", "dev", "--regions", "eu-west-1,ap-southeast-2")
    assert r.exit_code == 0, r.output
    return project


def actions(output: str) -> dict[tuple[str, str], str]:
    return {(a["service"], a["region"]): a["action"] for a in json.loads(output)["actions"]}


def test_region_scopes_deploy_history_outputs_and_remove(two_regions, run_mila) -> None:
    r = run_mila("deploy", "-e", "dev", "--region", "ap-southeast-2", "--no-prompt")
    assert r.exit_code == 0, r.output
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    assert actions(r.stdout) == {
        ("notifications", "eu-west-1"): "first_deploy", ("orders-api", "eu-west-1"): "first_deploy",
        ("notifications", "ap-southeast-2"): "no_changes",
        ("orders-api", "ap-southeast-2"): "no_changes"}
    r = run_mila("deploy", "-e", "dev", "--region", "eu-wset-1")
    assert r.exit_code == 2 and "did you mean 'eu-west-1'" in r.output
    r = run_mila("deploy", "-e", "dev", "--region", "us-east-1", "--no-prompt")
    assert r.exit_code == 2 and "environment 'dev' has no region us-east-1" in r.output
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0

    data = json.loads(run_mila("outputs", "-e", "dev", "--json").stdout)
    assert data["orders-api"]["eu-west-1"] == {"Url": "https://orders-api.eu-west-1.example"}
    assert set(data) == {"notifications", "orders-api"}
    assert set(data["notifications"]) == {"eu-west-1", "ap-southeast-2"}
    r = run_mila("outputs", "-e", "dev", "orders-api", "--region", "ap-southeast-2")
    assert r.exit_code == 0
    assert r.stdout.split() == ["orders-api", "ap-southeast-2", "Url",
                                "https://orders-api.ap-southeast-2.example"]
    r = run_mila("outputs", "-e", "dev", "orders-apy")
    assert r.exit_code == 2 and "did you mean 'orders-api'" in r.output
    r = run_mila("outputs", "-e", "dev", "common")
    assert r.exit_code == 2 and "'common' is a package" in r.output

    entries = json.loads(run_mila("history", "-e", "dev", "--region", "eu-west-1", "--json").stdout)
    assert len(entries) == 2 and {h["region"] for h in entries} == {"eu-west-1"}

    r = run_mila("remove", "-e", "dev", "--region", "eu-west-1", "--yes")
    assert r.exit_code == 0, r.output
    data = json.loads(run_mila("outputs", "-e", "dev", "--json").stdout)
    assert set(data["orders-api"]) == {"ap-southeast-2"}


def test_apply_region_applies_part_of_a_saved_plan(two_regions, run_mila, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    assert run_mila("deploy", "-e", "dev", "--plan-out", str(plan)).exit_code == 0
    r = run_mila("apply", str(plan), "--region", "eu-west-1", "--yes")
    assert r.exit_code == 0, r.output
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    kinds = actions(r.stdout)
    assert kinds[("orders-api", "eu-west-1")] == "no_changes"
    assert kinds[("orders-api", "ap-southeast-2")] == "first_deploy"
    # the rest of the plan is still current: the state changed, so it is stale as a whole
    r = run_mila("apply", str(plan), "--region", "ap-southeast-2", "--yes")
    assert r.exit_code == 2 and "state changed" in r.output


def test_envs_describe_fits_80_columns_and_wide_shows_everything(two_regions, run_mila) -> None:
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    out = run_mila("envs", "describe", "dev").stdout
    assert "notifications" in out and "ap-southeast-2" in out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "https://" not in out
    wide = run_mila("envs", "describe", "dev", "--wide").stdout
    assert "Url=https://orders-api.eu-west-1.example" in wide and "by" in wide
