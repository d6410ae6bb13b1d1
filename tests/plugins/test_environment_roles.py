"""`[environments.<name>] role_arn`: every AWS call of that environment assumes the role
(AssumeRole, or AssumeRoleWithWebIdentity with a token file), and `[accounts]` is checked
against the assumed identity. Against the sandbox."""

from __future__ import annotations

import json

import pytest

ROLE = "arn:aws:iam::123456789012:role/mila-dev-deploy"
EXTRA = f"""
[environments.dev]
role_arn = "{ROLE}"
[accounts.sandbox]
id = "123456789012"
environments = ["dev"]
"""


@pytest.fixture
def aws_shop(sandbox, project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(backend="aws", extra=EXTRA)
    project.service("api", 'deployer = "fake"\n')
    assert run_mila("init").exit_code == 0
    for env in ("dev", "qa"):
        assert run_mila("envs", "create", env).exit_code == 0
    return project


def test_the_environment_role_is_assumed_for_its_calls(aws_shop, run_mila) -> None:
    r = run_mila("deploy", "-e", "dev", "--yes")
    assert r.exit_code == 0, r.output
    assert "assumed-role/mila-dev-deploy/mila-shop-dev" in r.output  # the identity shown
    r = run_mila("deploy", "-e", "qa", "--yes")  # no role: the base identity
    assert r.exit_code == 0, r.output
    assert "assumed-role" not in r.output
    history = json.loads(run_mila("history", "-e", "dev", "--json").stdout)
    assert [h["service"] for h in history] == ["api"]  # the state is reached as the role too


def test_web_identity_token_file(aws_shop, run_mila, tmp_path, monkeypatch) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGUifQ.c2ln\n")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    r = run_mila("deploy", "-e", "dev", "--yes")
    assert r.exit_code == 0, r.output
    assert "mila-dev-deploy" in r.output


def test_the_identity_checked_is_the_assumed_roles(sandbox, project, run_mila,
                                                   monkeypatch) -> None:
    """A role in another account: the identity mila checks before deploying is the role's
    (here the sandbox guard refuses it, as it would refuse any account but the sandbox's)."""
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(backend="local", extra=EXTRA.replace("123456789012", "210987654321", 1))
    project.service("api", 'deployer = "fake"\n')
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev").exit_code == 0
    r = run_mila("deploy", "-e", "dev", "--yes")
    assert r.exit_code == 2
    assert "answered with account 210987654321" in r.output, r.output
    r = run_mila("deploy", "-e", "qa", "--yes")  # the base identity for other environments
    assert "environment 'qa' does not exist" in r.output


def test_an_invalid_role_arn_is_a_config_error(project, run_mila) -> None:
    project.root_config(extra='[environments.dev]\nrole_arn = "mila-deploy"\n')
    r = run_mila("info")
    assert r.exit_code == 2 and "environments.dev.role_arn" in r.output
    assert "is not an IAM role ARN" in r.output
