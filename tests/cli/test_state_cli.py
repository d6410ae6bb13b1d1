"""`mila init`, `mila envs`, `mila history`, `mila locks`, `mila release-lock` end to end.

Against the sandbox through AWS_ENDPOINT_URL (the aws backend, exactly as against AWS), and the
local backend where the behaviour is the backend's own.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from mila_sandbox import ACCOUNT_ID

from mila.model import ActionKind, HistoryEntry, Status, utcnow
from mila.project import load_project
from mila.testing.contracts import make_owner, make_record

SANDBOX_ACCOUNT = ACCOUNT_ID


@pytest.fixture
def aws_project(sandbox: Any, project: Any) -> Any:
    project.root_config(backend="aws")
    return project


@pytest.fixture
def ready(aws_project: Any, run_mila: Any) -> Any:
    """An initialised aws state."""
    r = run_mila("init")
    assert r.exit_code == 0, r.output
    return aws_project


def state_of(project: Any) -> Any:
    return load_project(project.root).state


# ----------------------------------------------------------------------------- init


def test_init_twice(aws_project: Any, run_mila: Any) -> None:
    first = run_mila("init")
    assert first.exit_code == 0, first.output
    assert f"account   {SANDBOX_ACCOUNT}" in first.output
    assert "identity  arn:aws:" in first.output
    assert "dynamodb:shop-mila-state + s3://shop-mila-checksums (eu-west-1)" in first.output
    assert "created   DynamoDB table shop-mila-state" in first.output
    assert "created   S3 bucket shop-mila-checksums" in first.output
    second = run_mila("init")
    assert second.exit_code == 0, second.output
    assert "created" not in second.output
    assert "already exists, nothing to change" in second.output
    assert f"account   {SANDBOX_ACCOUNT}" in second.output


def test_init_refuses_a_table_with_another_key_schema(aws_project: Any, run_mila: Any,
                                                      sandbox: Any) -> None:
    from mila_aws.session import client

    ddb = client("dynamodb", "eu-west-1")
    ddb.create_table(TableName="shop-mila-state", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    r = run_mila("init")
    assert r.exit_code == 2
    assert "error: DynamoDB table 'shop-mila-state' exists with a different key schema" in r.output
    assert ddb.describe_table(TableName="shop-mila-state")["Table"]["KeySchema"] == \
        [{"AttributeName": "id", "KeyType": "HASH"}]


def test_init_refuses_an_account_not_in_accounts(sandbox: Any, project: Any,
                                                 run_mila: Any) -> None:
    project.root_config(backend="aws", extra='[accounts.prod]\nid = "111111111111"\n'
                                              'environments = ["prod"]\n')
    r = run_mila("init")
    assert r.exit_code == 2
    assert "account 123456789012" in r.output and "111111111111 (prod)" in r.output
    assert "created" not in r.output
    from mila_aws.session import client

    assert client("dynamodb", "eu-west-1").list_tables()["TableNames"] == []


def test_envs_create_and_release_lock_check_the_account_first(sandbox: Any, project: Any,
                                                              run_mila: Any) -> None:
    project.root_config(backend="aws", extra=f'[accounts.dev]\nid = "{SANDBOX_ACCOUNT}"\n'
                                              'environments = ["dev"]\n'
                                              '[accounts.prod]\nid = "111111111111"\n'
                                              'environments = ["prod"]\n')
    assert run_mila("init").exit_code == 0
    r = run_mila("envs", "create", "prod", "--regions", "eu-west-1")
    assert r.exit_code == 2, r.output
    assert "belongs to account 111111111111" in r.output
    assert run_mila("envs", "list", "--json").stdout.strip() == "[]"
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    # release-lock: an environment of another account is refused before anything is released
    from mila.project import load_project

    state = load_project(project.root).state
    state.create_environment("prod", ["eu-west-1"], "someone")  # as its own account would
    state.acquire_lock("prod", "api", "eu-west-1", make_owner("bob"), timedelta(seconds=0.1))
    time.sleep(0.2)
    r = run_mila("release-lock", "-e", "prod", "--yes")
    assert r.exit_code == 2 and "belongs to account 111111111111" in r.output, r.output
    assert len(state.locks("prod")) == 1


def test_init_in_a_configured_account(sandbox: Any, project: Any, run_mila: Any) -> None:
    project.root_config(backend="aws", extra=f'[accounts.dev]\nid = "{SANDBOX_ACCOUNT}"\n'
                                              'environments = ["dev"]\n')
    r = run_mila("init")
    assert r.exit_code == 0, r.output


def _policy_actions(policy: dict[str, Any]) -> dict[str, set[str]]:
    return {s["Sid"]: set([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            for s in policy["Statement"]}


def test_print_policy_merges_the_state_backend_and_the_deployers_in_use(project: Any,
                                                                          run_mila: Any) -> None:
    project.root_config(backend="aws")
    project.write("services/api/template.yaml", "Resources: {}\n")
    r = run_mila("init", "--print-policy")
    assert r.exit_code == 0, r.output
    by_sid = _policy_actions(json.loads(r.stdout))
    assert {"dynamodb:Query", "dynamodb:ConditionCheckItem"} <= by_sid["MilaStateTable"]
    assert "cloudformation:ExecuteChangeSet" in by_sid["MilaStacks"]
    assert by_sid["MilaPassRoleToCloudFormation"] == {"iam:PassRole"}
    assert "s3:CreateBucket" in by_sid["MilaArtifacts"]  # mila-artifacts-* is made on first use
    assert list(by_sid).count("MilaIdentity") == 1  # given by both plugins, printed once


def test_print_policy_of_a_local_state_has_only_the_deployers_part(project: Any,
                                                                    run_mila: Any) -> None:
    project.root_config(backend="local")
    project.write("services/api/template.yaml", "Resources: {}\n")
    r = run_mila("init", "--print-policy")
    assert r.exit_code == 0, r.output
    by_sid = _policy_actions(json.loads(r.stdout))
    assert "MilaStateTable" not in by_sid and "MilaStacks" in by_sid


def test_print_policy_with_nothing_in_aws_says_so(project: Any, run_mila: Any,
                                                  monkeypatch: Any) -> None:
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(backend="local")
    project.service("web", 'deployer = "fake"\n')
    r = run_mila("init", "--print-policy")
    assert r.exit_code == 2
    assert "no plugin of this project declares IAM permissions" in r.output


def test_commands_before_init_say_to_run_init(aws_project: Any, run_mila: Any) -> None:
    for args in (("envs", "list"), ("envs", "create", "dev"), ("history", "-e", "dev"),
                 ("locks", "-e", "dev")):
        r = run_mila(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "run `mila init`" in r.output


# ----------------------------------------------------------------------------- envs


def test_envs_lifecycle(ready: Any, run_mila: Any) -> None:
    r = run_mila("envs", "list")
    assert "no environments yet" in r.output
    r = run_mila("envs", "create", "dev")  # no terminal: the default region, no prompt
    assert r.exit_code == 0, r.output
    assert "created environment dev in eu-west-1" in r.output
    r = run_mila("envs", "create", "prod", "--regions", "eu-west-1, us-east-1")
    assert r.exit_code == 0, r.output
    r = run_mila("envs", "create", "dev")
    assert r.exit_code == 2 and "environment 'dev' already exists" in r.output
    r = run_mila("envs", "list")
    assert r.exit_code == 0
    lines = [line.split() for line in r.output.splitlines()[1:]]
    assert [line[:2] for line in lines] == [["dev", "eu-west-1"], ["prod", "eu-west-1,"]]
    listed = json.loads(run_mila("envs", "list", "--json").stdout)
    assert [(e["name"], e["regions"]) for e in listed] == \
        [("dev", ["eu-west-1"]), ("prod", ["eu-west-1", "us-east-1"])]

    r = run_mila("envs", "create-replicate", "dev", "us-west-2")
    assert r.exit_code == 0 and "eu-west-1, us-west-2" in r.output
    r = run_mila("envs", "create-replicate", "dev", "us-west-2")
    assert r.exit_code == 2 and "already has region us-west-2" in r.output
    r = run_mila("envs", "destroy-replicate", "dev", "us-west-2")
    assert r.exit_code == 0 and "now has regions eu-west-1" in r.output
    r = run_mila("envs", "destroy-replicate", "dev", "eu-west-1")
    assert r.exit_code == 2 and "only region" in r.output

    r = run_mila("envs", "destroy", "dev")
    assert r.exit_code == 0, r.output
    assert [e["name"] for e in json.loads(run_mila("envs", "list", "--json").stdout)] == ["prod"]


@pytest.mark.parametrize("name", ["Dev", "dev_1", "-dev", "dev-", "a" * 33, "dév", ""])
def test_invalid_environment_names(name: str, project: Any, run_mila: Any) -> None:
    project.root_config(backend="local")
    r = run_mila("envs", "create", "--", name)
    assert r.exit_code == 2
    assert f"invalid environment name '{name}'" in r.output


def test_valid_environment_name_of_32_characters(project: Any, run_mila: Any) -> None:
    project.root_config(backend="local")
    assert run_mila("init").exit_code == 0
    r = run_mila("envs", "create", "a" * 30 + "-1")
    assert r.exit_code == 0, r.output


def test_invalid_region(ready: Any, run_mila: Any) -> None:
    r = run_mila("envs", "create", "dev", "--regions", "eu-west-1,mars-north-1")
    assert r.exit_code == 2
    assert "'mars-north-1' is not an AWS region" in r.output
    assert json.loads(run_mila("envs", "list", "--json").stdout) == []


def test_unknown_environment(ready: Any, run_mila: Any) -> None:
    for args in (("envs", "describe", "x"), ("envs", "destroy", "x"), ("history", "-e", "x"),
                 ("locks", "-e", "x"), ("release-lock", "-e", "x", "--yes"),
                 ("envs", "create-replicate", "x", "us-east-1")):
        r = run_mila(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "error: environment 'x' does not exist" in r.output
        assert "create it with `mila envs create x`" in r.output


def test_create_prompts_for_regions_with_the_default_filled_in(
        project: Any, run_mila: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mila import ui

    project.root_config(backend="local")
    assert run_mila("init").exit_code == 0
    monkeypatch.setattr(ui, "is_terminal", lambda stream=None: True)
    r = run_mila("envs", "create", "dev", input="\n")
    assert r.exit_code == 0, r.output
    assert "Regions (comma-separated) [eu-west-1]:" in r.output
    assert "created environment dev in eu-west-1" in r.output
    r = run_mila("envs", "create", "qa", input="us-east-1,eu-west-1\n")
    assert "created environment qa in us-east-1, eu-west-1" in r.output


def seed_deployment(project: Any) -> Any:
    state = state_of(project)
    state.create_environment("dev", ["eu-west-1", "us-east-1"], "alice@laptop")
    lock = state.acquire_lock("dev", "api", "eu-west-1", make_owner(), timedelta(minutes=5))
    state.put_record(make_record("dev", "api", "eu-west-1", checksum="abcdef0123456789" * 4,
                                 commit="feedbeef" * 5, deployed_by="alice@laptop",
                                 outputs={"Url": "https://api"}), lock)
    state.release(lock)
    base = utcnow() - timedelta(hours=1)
    for i, (service, status) in enumerate([("api", Status.FAILED), ("web", Status.SUCCEEDED),
                                           ("api", Status.SUCCEEDED)]):
        state.append_history(HistoryEntry("dev", service, "eu-west-1", ActionKind.DEPLOY,
                                          status, f"sum{i}", base + timedelta(minutes=i),
                                          by="alice", commit="c0ffee", duration_seconds=3.5,
                                          message="boom" if status is Status.FAILED else None))
    return state


def test_describe(ready: Any, run_mila: Any) -> None:
    seed_deployment(ready)
    r = run_mila("envs", "describe", "dev", "--wide")
    assert r.exit_code == 0, r.output
    assert "environment dev: eu-west-1, us-east-1" in r.output
    row = next(line for line in r.output.splitlines() if line.startswith("api"))
    for cell in ("eu-west-1", "succeeded", "abcdef012345", "2026-01-02 03:04",
                 "alice@laptop", "feedbeeffe", "Url=https://api"):
        assert cell in row, cell
    assert "abcdef0123456" not in row  # a checksum prefix, not the whole checksum
    data = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)
    assert data["name"] == "dev" and data["regions"] == ["eu-west-1", "us-east-1"]
    (record,) = data["records"]
    assert record["service"] == "api" and record["outputs"] == {"Url": "https://api"}
    assert record["deployed_at"] == "2026-01-02T03:04:05.678901+00:00"
    assert data["locks"] == []


def test_destroy_with_deployed_services_needs_confirmation(ready: Any, run_mila: Any) -> None:
    # `envs destroy` destroys the services first (tests/cli/test_deploy_flow.py); without a
    # terminal and without --no-prompt it refuses and keeps everything.
    seed_deployment(ready)
    r = run_mila("envs", "destroy", "dev")
    assert r.exit_code == 2 and "no terminal to confirm the plan" in r.output
    assert "api" in r.output and "destroy" in r.output  # the plan was shown
    assert run_mila("envs", "describe", "dev").exit_code == 0
    r = run_mila("envs", "destroy-replicate", "dev", "eu-west-1")
    assert r.exit_code == 2 and "no terminal to confirm the plan" in r.output
    r = run_mila("envs", "destroy-replicate", "dev", "us-east-1")  # nothing deployed there
    assert r.exit_code == 0, r.output


# ----------------------------------------------------------------------------- history


def test_history(ready: Any, run_mila: Any) -> None:
    seed_deployment(ready)
    r = run_mila("history", "-e", "dev")
    assert r.exit_code == 0, r.output
    rows = [line for line in r.output.splitlines()[1:] if line.strip()]
    assert [row.split()[2] for row in rows] == ["api", "web", "api"]  # newest first
    assert "boom" in rows[2] and "3.5s" in rows[0]
    data = json.loads(run_mila("history", "-e", "dev", "-s", "api", "--json").stdout)
    assert [(h["service"], h["status"], h["checksum"]) for h in data] == \
        [("api", "succeeded", "sum2"), ("api", "failed", "sum0")]
    data = json.loads(run_mila("history", "-e", "dev", "--limit", "1", "--json").stdout)
    assert [h["checksum"] for h in data] == ["sum2"]
    r = run_mila("history", "-e", "dev", "-s", "apy")  # unknown names are bad input
    assert r.exit_code == 2 and "unknown service 'apy'" in r.output and "did you mean 'api'?" in r.output
    r = run_mila("history", "-e", "dev", "--service", "api,web", "--json")  # the old spelling too
    assert r.exit_code == 0 and {h["service"] for h in json.loads(r.stdout)} == {"api", "web"}


# ----------------------------------------------------------------------------- locks


def test_locks_and_release_lock(ready: Any, run_mila: Any) -> None:
    state = seed_deployment(ready)
    owner = make_owner("bob")
    state.acquire_lock("dev", "api", "eu-west-1", owner, timedelta(minutes=5))
    state.acquire_lock("dev", "web", "us-east-1", owner, timedelta(minutes=5))
    r = run_mila("locks", "-e", "dev")
    assert r.exit_code == 0, r.output
    assert "bob@contract-host" in r.output and "job-7" in r.output
    data = json.loads(run_mila("locks", "-e", "dev", "--json").stdout)
    assert [(lk["service"], lk["region"], lk["owner"]["pid"], lk["expired"]) for lk in data] == \
        [("api", "eu-west-1", 4242, False), ("web", "us-east-1", 4242, False)]

    # fresh heartbeats: a live run's locks are refused without --force, naming who and since when
    r = run_mila("release-lock", "-e", "dev", "-s", "api", "--yes")
    assert r.exit_code == 3, r.output
    assert "refusing to release 1 live lock(s)" in r.output
    assert "api in eu-west-1: bob@contract-host (pid 4242, CI job job-7) since " in r.output
    assert "last heartbeat 0 s ago" in r.output and "--force" in r.output
    assert len(state.locks("dev")) == 2
    r = run_mila("release-lock", "-e", "dev", "-s", "api", "--force", input="n\n")
    assert r.exit_code == 2 and "nothing released" in r.output
    assert "api in eu-west-1: held by bob@contract-host (pid 4242, CI job job-7)" in r.output
    assert len(state.locks("dev")) == 2
    r = run_mila("release-lock", "-e", "dev", "-s", "nope", "--yes")
    assert r.exit_code == 2 and "no lock held on nope" in r.output
    r = run_mila("release-lock", "-e", "dev", "-s", "api", "--force", input="y\n")
    assert r.exit_code == 0 and "released 1 lock(s)" in r.output
    assert [lk.service for lk in state.locks("dev")] == ["web"]
    r = run_mila("release-lock", "-e", "dev", "--yes", "--force")
    assert r.exit_code == 0 and "released 1 lock(s)" in r.output
    assert "no locks held in dev" in run_mila("locks", "-e", "dev").output
    # a dead run's lock (no heartbeat since its lease ended) needs no --force
    state.acquire_lock("dev", "api", "eu-west-1", owner, timedelta(seconds=0.2))
    time.sleep(0.3)
    r = run_mila("release-lock", "-e", "dev", "--yes")
    assert r.exit_code == 0 and "released 1 lock(s)" in r.output


# ----------------------------------------------------------------------------- local backend


def test_local_backend_end_to_end(project: Any, run_mila: Any) -> None:
    project.root_config(backend="local")
    r = run_mila("init")
    assert r.exit_code == 0, r.output
    assert "sqlite:" in r.output and "created" in r.output
    assert "nothing to change" in run_mila("init").output
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    seed = state_of(project)
    lock = seed.acquire_lock("dev", "api", "eu-west-1", make_owner(), timedelta(minutes=5))
    seed.put_record(make_record("dev", "api", "eu-west-1"), lock)
    r = run_mila("envs", "describe", "dev")
    assert "api" in r.output and "locked    api in eu-west-1 by tester@contract-host" in r.output
    assert run_mila("envs", "destroy", "dev").exit_code == 2
