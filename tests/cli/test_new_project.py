"""`mila new`: a scaffolded project deploys on the sandbox as created."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mila.cli import cli


def mila(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_new_checks_every_answer_before_writing(tmp_path) -> None:
    target = tmp_path / "p"
    for args, message in ((["--name", "My App"], "invalid project name"),
                          (["--region", "eu-wset-1"], "did you mean 'eu-west-1'"),
                          (["--service", "x", "--package", "x"], "different names"),
                          (["--service", "Bad_Name"], "invalid service name")):
        r = mila("new", str(target), "--no-input", *args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
        assert not target.exists()
    assert mila("new", str(target), "--no-input").exit_code == 0
    r = mila("new", str(target), "--no-input")
    assert r.exit_code == 2 and "mila.toml already exists" in r.output


def test_new_asks_on_a_terminal(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("mila.ui.is_terminal", lambda stream=None: True)
    r = mila("new", str(tmp_path / "shop"), input="\n\nlocal\norders\n\n")
    assert r.exit_code == 0, r.output
    toml = (tmp_path / "shop" / "mila.toml").read_text()
    assert 'name = "shop"' in toml and 'backend = "local"' in toml
    assert (tmp_path / "shop" / "services" / "orders" / "template.yaml").is_file()


@pytest.mark.slow
def test_the_new_project_deploys_on_the_sandbox(sandbox, tmp_path) -> None:
    root = tmp_path / "demo"
    r = mila("new", str(root), "--name", "demo", "--region", "eu-west-1", "--state", "aws",
             "--service", "greeter", "--package", "shared-text")
    assert r.exit_code == 0, r.output
    for args in (["init"], ["envs", "create", "dev"], ["deploy", "-e", "dev", "--yes"]):
        r = mila("-C", str(root), *args)
        assert r.exit_code == 0, (args, r.output)
    outputs = json.loads(mila("-C", str(root), "outputs", "-e", "dev", "--json").stdout)
    assert outputs["greeter"]["eu-west-1"]["FunctionName"]
    # the package is a real dependency: changing it redeploys the service
    (root / "packages" / "shared-text" / "shared_text" / "__init__.py").write_text(
        'def greeting(name: str) -> str:\n    return f"hi from {name}"\n')
    plan = json.loads(mila("-C", str(root), "deploy", "-e", "dev", "--only-prompt",
                           "--json").stdout)
    assert [a["action"] for a in plan["actions"]] == ["deploy"]
