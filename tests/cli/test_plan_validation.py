"""Plan-time validation: each class of problem refuses the plan with exit 2 before any lock or
write (every record and history row is the same before and after), for `deploy`, `apply`,
`remove` and `mila validate`. Local backend, the fake deployer; the cfn-lint cases are in
tests/plugins/test_mila_cloudformation_validate.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mila.model import Record, Status
from mila.project import load_project


@pytest.fixture
def shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"])
    project.service("shared", 'deployer = "fake"\n')
    project.service("api", 'deployer = "fake"\ndepends_on = ["shared"]\n'
                           'parameters = { Topic = "${shared.Url}" }\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    return project


def state_of(run_mila) -> tuple[list, list]:
    """Every record and history row of dev."""
    records = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)["records"]
    history = json.loads(run_mila("history", "-e", "dev", "--json").stdout)
    return records, history


def refused(run_mila, *args: str, match: str):
    before = state_of(run_mila)
    r = run_mila(*args)
    assert r.exit_code == 2, r.output
    assert match in r.output, r.output
    assert "Traceback" not in r.output
    assert state_of(run_mila) == before
    return r


def set_api_parameters(shop, params: str) -> None:
    shop.write("services/api/mila.toml", '[service]\ndeployer = "fake"\ndepends_on = ["shared"]\n'
                                         f"parameters = {{ {params} }}\n")


def test_outputs_of_a_dependency_in_the_same_plan_are_known_after_apply(shop, run_mila) -> None:
    r = run_mila("deploy", "-e", "dev", "--only-prompt")
    assert r.exit_code == 0, r.output
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0


def test_a_typo_in_an_output_name_is_refused_at_plan_time(shop, run_mila) -> None:
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    set_api_parameters(shop, 'Topic = "${shared.Urll}"')
    r = refused(run_mila, "deploy", "-e", "dev", "--only-prompt",
                match="'shared' has no output 'Urll' in eu-west-1")
    assert "services/api/mila.toml" in r.output and "its outputs are: Url" in r.output
    refused(run_mila, "deploy", "-e", "dev", "--no-prompt", match="has no output 'Urll'")


def test_an_unknown_placeholder_is_refused(shop, run_mila) -> None:
    set_api_parameters(shop, 'Topic = "${stage}"')
    refused(run_mila, "deploy", "-e", "dev", "--only-prompt",
            match="unknown placeholder '${stage}'")
    refused(run_mila, "validate", match="unknown placeholder '${stage}'")


def test_a_dependency_neither_deployed_nor_planned_is_refused(shop, run_mila) -> None:
    refused(run_mila, "deploy", "-e", "dev", "-s", "api", "--no-prompt",
            match="refers to 'shared', which is not a deployed dependency in eu-west-1")


def test_a_recorded_service_whose_deployer_is_gone_is_refused(shop, run_mila) -> None:
    project = load_project(shop.root)
    from mila.locks import lock_owner

    state = project.state
    lock = state.acquire_lock("dev", "old", "eu-west-1", lock_owner(), timedelta(minutes=1))
    state.put_record(Record("dev", "old", "eu-west-1", "c" * 64, Status.SUCCEEDED, "zip",
                            stack_name="shop-old-dev"), lock)
    state.release(lock)
    refused(run_mila, "deploy", "-e", "dev", "--only-prompt",
            match="deployer 'zip' recorded for this service is not installed")
    refused(run_mila, "remove", "-e", "dev", "-s", "old", "--no-prompt",
            match="deployer 'zip' recorded for this service is not installed")


def test_apply_validates_the_saved_plan_again(shop, run_mila) -> None:
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    shop.write("services/api/handler.py", "# changed\n")
    assert run_mila("deploy", "-e", "dev", "--plan-out", str(shop.root / "plan.json")).exit_code == 0
    set_api_parameters(shop, 'Topic = "${shared.Nope}"')
    refused(run_mila, "apply", str(shop.root / "plan.json"), "--no-prompt",
            match="'shared' has no output 'Nope'")


def test_validate_needs_no_state(project, run_mila, monkeypatch) -> None:
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"], backend="aws")  # never reached
    project.service("shared", 'deployer = "fake"\n')
    project.service("api", 'deployer = "fake"\ndepends_on = ["shared"]\n'
                           'parameters = { Topic = "${shared.Url}", Stage = "${env}" }\n')
    r = run_mila("validate", "-e", "prod", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"services": ["api", "shared"], "warnings": []}
    project.service("web", 'deployer = "fake"\nparameters = { Topic = "${shared.Url}" }\n')
    r = run_mila("validate")
    assert r.exit_code == 2
    assert "web in eu-west-1: services/web/mila.toml: [parameters]" in r.output
    assert "not a deployed dependency" in r.output
    r = run_mila("validate", "-s", "apii")  # a typo: the closest service, as deploy -s says it
    assert r.exit_code == 2 and "unknown service 'apii'" in r.output
    assert "did you mean 'api'?" in r.output
    # [state] is configuration too: a typo there fails validate, still without reaching AWS
    project.root_config(workspaces=["services/*"], backend="aws", extra='tabel = "x"\n')
    r = run_mila("validate")
    assert r.exit_code == 2 and "state.tabel: unknown key 'tabel' for backend 'aws'" in r.output
