"""Environment files: dotenv syntax, precedence, placeholders, and variables in the checksum.

References are the test plugin's ``${fake:name}`` (``tests/support/mila_fake_references.py``);
the sandbox tests (``tests/plugins/test_variables_aws.py``) do the same with SSM and Secrets
Manager.
"""

from __future__ import annotations

import io
import json

import pytest
from dotenv import dotenv_values
from mila_fake_deployer import calls
from mila_fake_references import calls as reference_calls
from mila_fake_references import put

from mila.errors import ConfigError
from mila.variables import env_files, load_variables, parse_env_text

REGIONS = ("eu-west-1", "us-east-1")

SYNTAX = """\
# a comment
PLAIN=value
export EXPORTED=yes
SPACED = around the equals   # a comment after a value
SINGLE='no $interpolation ${here} # not a comment'
DOUBLE="escaped \\"quote\\" and\\nnewline"
MULTI="first line
second line"
EMPTY=
EMPTY_QUOTED=""
URL=postgres://user@host:5432/db?x=1#frag
HASH_IN_QUOTES="a # b"
PLACEHOLDER=${env}-${region}

"""


def test_dotenv_syntax_cases_parse_as_python_dotenv_does() -> None:
    parsed = {v.name: v.value for v in parse_env_text(SYNTAX, "envs/.env")}
    assert parsed == {k: v for k, v in dotenv_values(stream=io.StringIO(SYNTAX),
                                                     interpolate=False).items()}
    assert parsed["EXPORTED"] == "yes"
    assert parsed["SPACED"] == "around the equals"
    assert parsed["SINGLE"] == "no $interpolation ${here} # not a comment"
    assert parsed["DOUBLE"] == 'escaped "quote" and\nnewline'
    assert parsed["MULTI"] == "first line\nsecond line"
    assert parsed["EMPTY"] == "" and parsed["EMPTY_QUOTED"] == ""
    assert parsed["URL"] == "postgres://user@host:5432/db?x=1#frag"
    assert parsed["HASH_IN_QUOTES"] == "a # b"
    assert parsed["PLACEHOLDER"] == "${env}-${region}"  # mila's placeholders, not dotenv's
    lines = {v.name: v.line for v in parse_env_text(SYNTAX, "envs/.env")}
    assert lines["PLAIN"] == 2 and lines["MULTI"] == 7 and lines["EMPTY"] == 9


@pytest.mark.parametrize(("text", "message"), [
    ("OK=1\nNOVALUE\n", "line 2: 'NOVALUE' has no value"),
    ("OK=1\n'unterminated=1\n", "line 2: cannot parse"),
    ("1ABC=1\n", "'1ABC' is not a valid variable name"),
    ("MILA_ENV=x\n", "line 1: MILA_ENV is set by mila"),
    ("AWS_REGION=x\n", "AWS_REGION is set by mila"),
])
def test_bad_lines_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_env_text(text, "services/api/envs/.env.dev")
    assert "services/api/envs/.env.dev" in str(info.value)
    assert message in str(info.value)


def test_precedence_root_then_service_last_wins(tmp_path) -> None:
    assert env_files("services/api", "dev") == [
        "envs/.env", "envs/.env.dev", "services/api/envs/.env", "services/api/envs/.env.dev"]
    files = {"envs/.env": "A=root\nB=root\nC=root\nD=root\n",
             "envs/.env.dev": "B=root-dev\nC=root-dev\nD=root-dev\n",
             "envs/.env.prod": "A=root-prod\n",
             "services/api/envs/.env": "C=svc\nD=svc\n",
             "services/api/envs/.env.dev": "D=svc-dev\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = load_variables(tmp_path, "services/api", "dev")
    assert {k: v.value for k, v in found.items()} == {
        "A": "root", "B": "root-dev", "C": "svc", "D": "svc-dev"}
    assert found["D"].source == "services/api/envs/.env.dev:1"
    assert found["B"].source == "envs/.env.dev:1"
    assert load_variables(tmp_path, "services/api", "prod")["A"].value == "root-prod"
    assert load_variables(tmp_path, "services/web", "dev")["C"].value == "root-dev"


# ----------------------------------------------------------------------------- through the CLI


@pytest.fixture
def shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer,mila_fake_references")
    project.root_config(workspaces=["infra/*", "services/*"])
    project.service("shared", 'deployer = "fake"\n', folder="infra")
    project.service("api", 'deployer = "fake"\ndepends_on = ["shared"]\n')
    project.service("web", 'deployer = "fake"\n')
    project.write("envs/.env", "LOG_LEVEL=info\n")
    project.write("services/api/envs/.env", "TABLE=orders-${env}\nTOPIC=${shared.Url}\n")
    project.write("services/api/envs/.env.dev", "API_KEY=${fake:api-key}\n")
    for region in REGIONS:
        put(project.root, region, "api-key", f"key-{region}", secure=True)
    project.commit_all()
    assert run_mila("init").exit_code == 0
    for env in ("dev", "prod"):
        r = run_mila("envs", "create", env, "--regions", ",".join(REGIONS))
        assert r.exit_code == 0, r.output
    return project


def plan(run_mila, env: str = "dev") -> dict[tuple[str, str], str]:
    r = run_mila("deploy", "-e", env, "--json", "--only-prompt")
    assert r.exit_code == 0, r.output
    return {(a["service"], a["region"]): a["action"] for a in json.loads(r.stdout)["actions"]}


def deployed(run_mila, env: str = "dev") -> None:
    r = run_mila("deploy", "-e", env, "--no-prompt")
    assert r.exit_code == 0, r.output
    assert set(plan(run_mila, env).values()) == {"no_changes"}


def changed(before: dict, after: dict) -> set[str]:
    return {s for (s, _), a in after.items() if a != "no_changes"}


def test_variables_reach_the_deployer_resolved_per_region(shop, run_mila) -> None:
    deployed(run_mila)
    api = {c["region"]: c["variables"] for c in calls(shop.root)
           if c["op"] == "deploy" and c["service"] == "api"}
    for region in REGIONS:
        assert api[region] == {"LOG_LEVEL": "info", "TABLE": "orders-dev",
                               "TOPIC": f"https://shared.{region}.example",
                               "API_KEY": f"key-{region}",
                               "AWS_REGION": region, "MILA_ENV": "dev"}
    web = next(c["variables"] for c in calls(shop.root)
               if c["op"] == "deploy" and c["service"] == "web")
    assert web == {"LOG_LEVEL": "info", "AWS_REGION": web["AWS_REGION"], "MILA_ENV": "dev"}


def test_a_plan_checks_versions_and_never_reads_a_value(shop, run_mila) -> None:
    shop.write("services/web/envs/.env.dev", "SAME_KEY=${fake:api-key}\n")
    plan(run_mila)
    ops = reference_calls(shop.root)  # each reference once per region, however many use it
    assert sorted((c["op"], c["region"]) for c in ops) == [("describe", r) for r in REGIONS]


def test_changing_a_file_redeploys_only_the_services_receiving_it(shop, run_mila) -> None:
    deployed(run_mila)
    deployed(run_mila, "prod")
    shop.write("services/api/envs/.env.dev", "API_KEY=${fake:api-key}\nNEW=1\n")
    assert changed({}, plan(run_mila)) == {"api"}
    assert changed({}, plan(run_mila, "prod")) == set()  # a dev file changes nothing in prod
    deployed(run_mila)
    shop.write("envs/.env.prod", "LOG_LEVEL=debug\n")
    assert changed({}, plan(run_mila, "prod")) == {"shared", "api", "web"}
    assert changed({}, plan(run_mila)) == set()


def test_absent_differs_from_empty_and_the_shell_changes_nothing(shop, run_mila,
                                                                 monkeypatch) -> None:
    deployed(run_mila)
    monkeypatch.setenv("LOG_LEVEL", "shell-value")  # not named by any file: ignored
    monkeypatch.setenv("UNRELATED", "x")
    assert changed({}, plan(run_mila)) == set()
    shop.write("services/web/envs/.env", "EMPTY=\n")
    assert changed({}, plan(run_mila)) == {"web"}
    deployed(run_mila)
    shop.write("services/web/envs/.env", "")
    assert changed({}, plan(run_mila)) == {"web"}


def test_shell_variables_named_explicitly_are_inputs(shop, run_mila, monkeypatch) -> None:
    shop.write("services/web/envs/.env", "BUILD=${env:BUILD_ID}\n")
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    assert r.exit_code == 2
    assert "services/web/envs/.env:1: BUILD" in r.output and "BUILD_ID" in r.output
    monkeypatch.setenv("BUILD_ID", "41")
    deployed(run_mila)
    monkeypatch.setenv("BUILD_ID", "42")
    assert changed({}, plan(run_mila)) == {"web"}


def test_a_new_version_redeploys_its_consumers_in_that_region(shop, run_mila) -> None:
    deployed(run_mila)
    put(shop.root, "us-east-1", "api-key", "rotated", version="2", secure=True)
    after = plan(run_mila)
    assert {k for k, a in after.items() if a != "no_changes"} == {("api", "us-east-1")}
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    last = [c for c in calls(shop.root) if c["op"] == "deploy"][-1]
    assert last["variables"]["API_KEY"] == "rotated"


def test_a_missing_reference_refuses_the_plan_before_any_write(shop, run_mila) -> None:
    shop.write("services/web/envs/.env.dev", "SECRET=${fake:nowhere}\n")
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 2
    assert "services/web/envs/.env.dev:1: SECRET: fake 'nowhere' does not exist in " in r.output
    assert not calls(shop.root)  # nothing deployed
    assert run_mila("history", "-e", "dev").output.startswith("no history")
    assert not run_mila("locks", "-e", "dev", "--json").output.strip("[]\n ")


@pytest.mark.parametrize(("line", "message"), [
    ("X=${nope:thing}", "unknown reference kind 'nope'"),
    ("X=${web.Url}", "refers to 'web', which is not a dependency"),
    ("X=${whatever}", "unknown placeholder '${whatever}'"),
])
def test_bad_placeholders_refuse_the_plan(shop, run_mila, line: str, message: str) -> None:
    shop.write("services/api/envs/.env.prod", line + "\n")
    r = run_mila("deploy", "-e", "prod", "--json", "--only-prompt")
    assert r.exit_code == 2
    assert "services/api/envs/.env.prod:1: X" in r.output and message in r.output


def test_the_manifest_keeps_digests_never_values(shop, run_mila) -> None:
    deployed(run_mila)
    secret = "key-eu-west-1"
    found = [p for p in (shop.root / ".mila").rglob("*") if p.is_file()
             and secret.encode() in p.read_bytes()]
    assert found == []
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt", "--force")
    assert secret not in r.output


def test_parameters_read_variables_then_the_shell(shop, run_mila, monkeypatch) -> None:
    from mila_fake_deployer import stack_file

    shop.write("services/web/mila.toml", '[service]\ndeployer = "fake"\n'
               'parameters = { Table = "${env:TABLE}", Build = "${env:BUILD_NO}" }\n')
    shop.write("services/web/envs/.env", "TABLE=web-${env}\n")
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    assert r.exit_code == 2
    assert "services/web/mila.toml" in r.output and "BUILD_NO" in r.output
    monkeypatch.setenv("BUILD_NO", "7")
    monkeypatch.setenv("TABLE", "from-the-shell")  # the file's variable wins
    deployed(run_mila)
    stack = json.loads(stack_file(shop.root, "us-east-1", "shop-web-dev").read_text())
    assert stack["outputs"]["ParamTable"] == "web-dev"
    assert stack["outputs"]["ParamBuild"] == "7"
    monkeypatch.setenv("BUILD_NO", "8")
    assert changed({}, plan(run_mila)) == {"web"}


def test_env_show_names_sources_and_masks_secure_values(shop, run_mila) -> None:
    shop.write("services/web/envs/.env.dev", "BROKEN=${fake:nowhere}\n")
    r = run_mila("env", "show", "-e", "dev", "--json")
    assert r.exit_code == 2, r.output  # BROKEN: a deploy would be refused
    rows = {(v["service"], v["region"], v["name"]): v for v in json.loads(r.stdout)}
    key = rows[("api", "us-east-1", "API_KEY")]
    assert key["value"] == "****" and key["masked"] is True
    assert key["source"] == "services/api/envs/.env.dev:1"
    assert key["references"] == [{"kind": "fake", "name": "api-key", "version": "1",
                                  "type": "fake", "secure": True}]
    assert "key-us-east-1" not in r.stdout
    assert rows[("api", "eu-west-1", "TABLE")]["value"] == "orders-dev"
    assert rows[("web", "eu-west-1", "LOG_LEVEL")]["source"] == "envs/.env:1"
    assert rows[("api", "eu-west-1", "TOPIC")]["value"] == "${shared.Url}"  # not deployed yet
    assert "does not exist in eu-west-1" in rows[("web", "eu-west-1", "BROKEN")]["error"]
    r = run_mila("env", "show", "-e", "dev", "-s", "api", "--region", "us-east-1")
    assert r.exit_code == 0, r.output
    assert "services/api/envs/.env.dev:1" in r.output and "key-us-east-1" not in r.output
    assert "eu-west-1" not in r.output and "web" not in r.output
    r = run_mila("env", "show", "-e", "dev", "-s", "web")
    assert r.exit_code == 2 and "error:" in r.output


def test_create_replicate_copies_references_from_the_first_region(shop, run_mila) -> None:
    from mila_fake_references import store

    shop.write("services/api/envs/.env.qa", "API_KEY=${fake:qa-key}\n")
    put(shop.root, "eu-west-1", "qa-key", "qa-secret", version="5", secure=True)
    assert run_mila("envs", "create", "qa", "--regions", "eu-west-1").exit_code == 0
    # --no-copy: the plan in the new region is refused and the region rolled back
    r = run_mila("envs", "create-replicate", "qa", "us-east-1", "--no-prompt", "--no-copy")
    assert r.exit_code == 2 and "fake 'qa-key' does not exist in us-east-1" in r.output
    assert "qa-key" not in json.loads(store(shop.root).read_text())["us-east-1"]
    r = run_mila("envs", "create-replicate", "qa", "us-east-1", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert "copied    fake:qa-key from eu-west-1 to us-east-1" in r.output
    assert "qa-secret" not in r.output
    copied = json.loads(store(shop.root).read_text())["us-east-1"]["qa-key"]
    assert copied["value"] == "qa-secret" and copied["secure"] is True
    deploy = [c for c in calls(shop.root) if c["op"] == "deploy" and c["service"] == "api"][-1]
    assert deploy["region"] == "us-east-1" and deploy["variables"]["API_KEY"] == "qa-secret"


def test_create_replicate_refuses_a_reference_missing_in_the_source(shop, run_mila) -> None:
    shop.write("services/api/envs/.env.qa", "API_KEY=${fake:nowhere}\n")
    assert run_mila("envs", "create", "qa", "--regions", "eu-west-1").exit_code == 0
    r = run_mila("envs", "create-replicate", "qa", "us-east-1", "--no-prompt")
    assert r.exit_code == 2
    assert ("services/api/envs/.env.qa:1: API_KEY: fake 'nowhere' does not exist in eu-west-1"
            in r.output)
    described = json.loads(run_mila("envs", "describe", "qa", "--json").stdout)
    assert described["regions"] == ["eu-west-1"]  # nothing written


def test_remove_only_warns_about_a_missing_reference(shop, run_mila) -> None:
    deployed(run_mila)
    (shop.root / ".fake-refs.json").write_text("{}")  # the secret is gone everywhere
    assert run_mila("deploy", "-e", "dev", "--json").exit_code == 2  # a deploy is refused
    r = run_mila("remove", "-e", "dev", "-s", "api", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert "variable left out" in r.output and "API_KEY" in r.output
    assert {c["service"] for c in calls(shop.root) if c["op"] == "destroy"} == {"api"}


def test_the_manifest_says_which_variable_changed(shop, run_mila) -> None:
    from mila.deploy import prepare
    from mila.explain import explain
    from mila.project import load_project

    deployed(run_mila)
    before = prepare(load_project(shop.root), "dev").manifests[("api", "eu-west-1")]
    assert set(before["variables"]) == {"LOG_LEVEL", "TABLE", "TOPIC", "API_KEY"}
    assert all(len(d) == 64 for d in before["variables"].values())  # digests, not values
    shop.write("services/api/envs/.env", "TABLE=orders-v2-${env}\nTOPIC=${shared.Url}\nNEW=\n")
    shop.write("envs/.env", "")
    after = prepare(load_project(shop.root), "dev").manifests[("api", "eu-west-1")]
    assert explain(before, after) == ["variable LOG_LEVEL removed", "variable NEW added",
                                      "variable TABLE changed"]
