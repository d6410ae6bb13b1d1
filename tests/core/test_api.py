"""mila.api: what a plugin uses to reach the project, its state and outputs."""

from __future__ import annotations

import pytest

from mila import api
from mila.errors import ConfigError


@pytest.fixture
def deployed(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer,mila_api_plugin")
    project.root_config(name="apishop")
    project.service("web", 'deployer = "fake"\n')
    project.service("worker", 'deployer = "fake"\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    r = run_mila("envs", "create", "dev", "--regions", "eu-west-1,us-east-1")
    assert r.exit_code == 0, r.output
    r = run_mila("deploy", "-e", "dev", "--no-prompt", "-s", "web")
    assert r.exit_code == 0, r.output
    return project


def test_outputs_and_records_read_the_state(deployed) -> None:
    project = api.load_project(deployed.root)
    found = api.outputs(project, "dev")
    assert set(found) == {"web"}  # worker never deployed: no outputs
    assert set(found["web"]) == {"eu-west-1", "us-east-1"}
    assert found["web"]["us-east-1"]["Url"] == "https://web.us-east-1.example"
    assert set(api.outputs(project, "dev", region="us-east-1")["web"]) == {"us-east-1"}
    assert api.outputs(project, "dev", service="worker") == {}
    assert [(r.service, r.region) for r in api.records(project, "dev")] == [
        ("web", "eu-west-1"), ("web", "us-east-1")]


def test_plugin_command_gets_the_project_of_dash_c(deployed, run_mila, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the project: only -C names it
    r = run_mila("urls", "-e", "dev")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "project apishop at repo"
    assert sorted(lines[1:]) == ["web eu-west-1 https://web.eu-west-1.example",
                                 "web us-east-1 https://web.us-east-1.example"]


def test_load_project_outside_a_project_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no mila.toml"):
        api.load_project(tmp_path)
