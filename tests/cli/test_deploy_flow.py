"""`mila deploy` / `apply` / `remove` end to end, with the fake deployer plugin.

Runs against the local backend and, through the sandbox, against the aws backend (DynamoDB +
S3 through AWS_ENDPOINT_URL): the same scenario must give the same plans on both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mila_fake_deployer import builds, calls, stack_file

REGIONS = ("eu-west-1", "us-east-1")


@pytest.fixture(params=["local", "aws"])
def shop(request, project, run_mila, monkeypatch):
    if request.param == "aws":
        request.getfixturevalue("sandbox")
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["infra/*", "packages/*", "services/*"],
                        backend=request.param)
    project.package("core", files={"core.py": "VERSION = 1\n"})
    project.service("shared", 'deployer = "fake"\n', folder="infra")
    project.service("api", 'deployer = "fake"\ndepends_on = ["shared"]\n'
                           'parameters = { Topic = "${shared.Url}", Stage = "${env}-${region}" }\n',
                    files={"handler.py": "def handler(e, c): return 1\n",
                           "pyproject.toml": '[project]\nname = "api"\ndependencies = ["core"]\n'})
    project.service("web", 'deployer = "fake"\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    r = run_mila("envs", "create", "dev", "--regions", ",".join(REGIONS))
    assert r.exit_code == 0, r.output
    return project


def plan(run_mila, *args: str) -> dict[tuple[str, str], str]:
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt", *args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["environment"] == "dev"
    return {(a["service"], a["region"]): a["action"] for a in data["actions"]}


def deploy(run_mila, *args: str):
    return run_mila("deploy", "-e", "dev", "--no-prompt", *args)


def every(action: str, services=("api", "shared", "web")) -> dict[tuple[str, str], str]:
    return {(s, r): action for s in services for r in REGIONS}


def test_first_deploy_then_no_changes_then_only_dependents(shop, run_mila) -> None:
    assert plan(run_mila) == every("first_deploy")
    r = deploy(run_mila)
    assert r.exit_code == 0, r.output
    assert "6 to deploy, 0 unchanged, 0 to destroy" in r.output
    assert plan(run_mila) == every("no_changes")

    # shared infrastructure first, and its outputs reach the dependent's parameters
    deploys = [c for c in calls(shop.root) if c["op"] == "deploy"]
    for region in REGIONS:
        shared = next(c for c in deploys if c["service"] == "shared" and c["region"] == region)
        api = next(c for c in deploys if c["service"] == "api" and c["region"] == region)
        assert shared["end"] <= api["start"]
        assert api["dependency_outputs"]["shared"]["Url"] == f"https://shared.{region}.example"
    stack = json.loads(stack_file(shop.root, "us-east-1", "shop-api-dev").read_text())
    assert stack["outputs"]["ParamTopic"] == "https://shared.us-east-1.example"
    assert stack["outputs"]["ParamStage"] == "dev-us-east-1"

    # editing the shared package redeploys exactly its dependents
    shop.write("packages/core/core.py", "VERSION = 2\n")
    expected = every("no_changes")
    expected.update({("api", r): "deploy" for r in REGIONS})
    assert plan(run_mila) == expected
    assert deploy(run_mila).exit_code == 0
    assert plan(run_mila) == every("no_changes")


def test_deleted_service_is_destroyed_from_its_record(shop, run_mila) -> None:
    assert deploy(run_mila).exit_code == 0
    import shutil
    shutil.rmtree(shop.root / "services" / "web")
    expected = every("no_changes", ("api", "shared"))
    expected.update({("web", r): "destroy" for r in REGIONS})
    assert plan(run_mila) == expected
    r = deploy(run_mila)
    assert r.exit_code == 0, r.output
    assert not stack_file(shop.root, "eu-west-1", "shop-web-dev").exists()
    assert plan(run_mila) == every("no_changes", ("api", "shared"))
    history = json.loads(run_mila("history", "-e", "dev", "--json").stdout)
    assert any(h["service"] == "web" and h["action"] == "destroy" for h in history)


def test_failing_deployer_exits_1_keeps_the_record_and_next_plan_redeploys(shop, run_mila) -> None:
    assert deploy(run_mila).exit_code == 0
    before = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)
    shop.write("services/api/FAIL", "x")
    r = deploy(run_mila)
    assert r.exit_code == 1
    assert "api refused to deploy" in r.output and "fake failure log line" in r.output
    assert ".mila/logs/dev/api.eu-west-1.log" in r.output
    after = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)

    def checksums(d):
        return {(x["service"], x["region"]): x["checksum"] for x in d["records"]}

    assert checksums(after) == checksums(before)
    assert {x["status"] for x in after["records"] if x["service"] == "api"} == {"failed"}
    (shop.root / "services/api/FAIL").unlink()
    # same code as deployed, but the last action failed: redeploy
    expected = every("no_changes")
    expected.update({("api", r): "deploy" for r in REGIONS})
    assert plan(run_mila) == expected
    assert deploy(run_mila).exit_code == 0
    assert plan(run_mila) == every("no_changes")


def test_failure_skips_dependents_and_independent_services_carry_on(shop, run_mila) -> None:
    shop.write("infra/shared/FAIL", "x")
    r = deploy(run_mila)
    assert r.exit_code == 1
    assert "skipped" in r.output
    state = plan(run_mila)
    assert state[("web", "eu-west-1")] == "no_changes"
    assert state[("api", "eu-west-1")] == "first_deploy"
    assert not any(c["service"] == "api" for c in calls(shop.root))


def test_a_failing_build_writes_nothing_and_skips_dependents(shop, run_mila) -> None:
    shop.write("infra/shared/BUILD_FAIL", "x")
    r = deploy(run_mila)
    assert r.exit_code == 1
    assert "shared failed to build" in r.output and "skipped" in r.output
    assert "fake build log line" in (shop.root / ".mila/logs/dev/shared.eu-west-1.log").read_text()
    described = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)
    # nothing written for the failed build: no record, no history row, no lock left
    assert not any(x["service"] == "shared" for x in described["records"])
    history = json.loads(run_mila("history", "-e", "dev", "--json").stdout)
    assert not any(h["service"] in ("shared", "api") for h in history)
    assert run_mila("locks", "-e", "dev").exit_code == 0
    assert not any(c["service"] in ("shared", "api") for c in calls(shop.root))
    assert {b["service"] for b in builds(shop.root)} == {"web"}  # api was never built
    (shop.root / "infra/shared/BUILD_FAIL").unlink()
    assert deploy(run_mila).exit_code == 0
    # the build receives the workspace packages from the graph
    assert {"service": "api", "packages": {"core": "packages/core"}} in builds(shop.root)


def test_mila_build_builds_alone_and_fails_with_exit_1(shop, run_mila) -> None:
    r = run_mila("build", "-s", "api,web")
    assert r.exit_code == 0, r.output
    assert "api: built" in r.output and "web: built" in r.output
    assert {b["service"] for b in builds(shop.root)} == {"api", "web"}
    assert calls(shop.root) == []  # nothing deployed
    shop.write("services/web/BUILD_FAIL", "x")
    r = run_mila("build")
    assert r.exit_code == 1
    assert "web: failed: web failed to build" in r.output
    assert run_mila("build", "-s", "nope").exit_code == 2
    (shop.root / "services/web/BUILD_FAIL").unlink()
    assert deploy(run_mila).exit_code == 0
    before = len(builds(shop.root))
    r = run_mila("build", "-e", "dev")  # what the dev plan deploys: nothing
    assert r.exit_code == 0 and "nothing to build" in r.output
    shop.write("services/web/handler.py", "# changed\n")
    r = run_mila("build", "-e", "dev")
    assert r.exit_code == 0 and "web: built" in r.output and "api:" not in r.output
    assert [b["service"] for b in builds(shop.root)[before:]] == ["web"]


def test_services_filter_force_and_detailed_exitcode(shop, run_mila) -> None:
    assert plan(run_mila, "-s", "web") == every("first_deploy", ("web",))
    assert deploy(run_mila, "-s", "web").exit_code == 0
    assert plan(run_mila, "-s", "web") == every("no_changes", ("web",))
    assert plan(run_mila, "-s", "web", "--force") == every("deploy", ("web",))
    r = run_mila("deploy", "-e", "dev", "-s", "web", "--only-prompt", "--detailed-exitcode")
    assert r.exit_code == 0 and "0 to deploy, 2 unchanged, 0 to destroy" in r.output
    r = run_mila("deploy", "-e", "dev", "--on-prompt", "--detailed-exitcode")
    assert r.exit_code == 4 and "first_deploy" in r.output
    r = run_mila("deploy", "-e", "dev", "-s", "nope")
    assert r.exit_code == 2 and "unknown service 'nope'" in r.output


def test_plan_file_is_applied_exactly_or_refused_when_stale(shop, run_mila, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert run_mila("deploy", "-e", "dev", "-s", "web", "--plan-out", str(out)).exit_code == 0
    assert not calls(shop.root)  # saving a plan deploys nothing
    r = run_mila("apply", str(out))  # no terminal: refused, and the hint names only apply's flags
    assert r.exit_code == 2 and "no terminal to confirm the plan" in r.output
    assert "--no-prompt" in r.output and "--only-prompt" not in r.output
    r = run_mila("apply", str(out), "--no-prompt")
    assert r.exit_code == 0, r.output
    assert {(c["service"], c["region"]) for c in calls(shop.root)} == {("web", r) for r in REGIONS}
    # applying it again: the state changed since
    r = run_mila("apply", str(out), "--no-prompt")
    assert r.exit_code == 2 and "the state changed" in r.output
    out2 = tmp_path / "plan2.json"
    assert run_mila("deploy", "-e", "dev", "--plan-out", str(out2)).exit_code == 0
    shop.write("services/api/handler.py", "changed\n")
    r = run_mila("apply", str(out2), "--no-prompt")
    assert r.exit_code == 2 and "the code changed" in r.output and "api/eu-west-1" in r.output


def test_remove_destroys_selected_services(shop, run_mila) -> None:
    assert deploy(run_mila).exit_code == 0
    r = run_mila("remove", "-e", "dev", "-s", "web", "--no-prompt")
    assert r.exit_code == 0, r.output
    state = plan(run_mila)
    assert state[("web", "eu-west-1")] == "first_deploy"
    assert state[("api", "eu-west-1")] == "no_changes"
    r = run_mila("destroy", "-e", "dev", "-s", "gone", "--no-prompt")
    assert r.exit_code == 2 and "not deployed in 'dev': gone" in r.output


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_usage_errors_exit_2_with_a_message(shop, run_mila) -> None:
    for bad in ("0", "513", "abc"):
        r = run_mila("deploy", "-e", "dev", "-c", bad, "--no-prompt")
        assert r.exit_code == 2, bad
        assert "concurrency" in r.output
    r = run_mila("deploy", "-e", "nope", "--no-prompt")
    assert r.exit_code == 2
    assert "environment 'nope' does not exist (environments are: dev)" in r.output
    assert "create it with `mila envs create nope`" in r.output
    r = run_mila("deploy", "-e", "", "--no-prompt")  # e.g. -e "$UNSET_VARIABLE" in a CI script
    assert r.exit_code == 2 and "the environment name is empty (from -e)" in r.output
    r = run_mila("deploy", "-e", "dev", "--region", "", "--no-prompt")
    assert r.exit_code == 2 and "no region given" in r.output and "--regions" not in r.output
    r = run_mila("deploy", "-e", "dev")  # no terminal, no --no-prompt: refuse, never hang
    assert r.exit_code == 2 and "no terminal to confirm the plan" in r.output
    assert "--only-prompt to print the plan only" in r.output
    assert not calls(shop.root)


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_prompt_defaults_to_no_when_destroying(shop, run_mila, monkeypatch) -> None:
    monkeypatch.setattr("mila.cli.deploy_cmd.stdin_is_terminal", lambda: True)
    r = run_mila("deploy", "-e", "dev", input="\n")
    assert r.exit_code == 0 and "[Y/n]" in r.output
    assert len(calls(shop.root)) == 6
    r = run_mila("remove", "-e", "dev", "-s", "web", input="\n")
    assert "[y/N]" in r.output and r.exit_code == 1 and "nothing was destroyed" in r.output


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_concurrency_never_exceeds_c(shop, run_mila) -> None:
    for name in ("a1", "a2", "a3", "a4"):
        shop.service(name, 'deployer = "fake"\nsleep = 0.2\n')
    r = deploy(run_mila, "-c", "2", "-s", "a1,a2,a3,a4")
    assert r.exit_code == 0, r.output
    spans = [(c["start"], c["end"]) for c in calls(shop.root)]
    assert len(spans) == 8
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == 2


def test_envs_destroy_destroys_every_service_then_the_environment(shop, run_mila) -> None:
    assert deploy(run_mila).exit_code == 0
    r = run_mila("envs", "destroy", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert "destroyed environment dev" in r.output
    assert not list((shop.root / ".fake-cloud").glob("*/*.json"))
    assert json.loads(run_mila("envs", "list", "--json").stdout) == []


def test_create_replicate_deploys_the_new_region(shop, run_mila) -> None:
    assert deploy(run_mila).exit_code == 0
    r = run_mila("envs", "create-replicate", "dev", "eu-central-1", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert stack_file(shop.root, "eu-central-1", "shop-api-dev").exists()
    regions = {(a, b) for a, b in plan(run_mila)}
    assert ("api", "eu-central-1") in regions and set(plan(run_mila).values()) == {"no_changes"}
    r = run_mila("envs", "destroy-replicate", "dev", "eu-central-1", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert not stack_file(shop.root, "eu-central-1", "shop-api-dev").exists()
    assert plan(run_mila) == every("no_changes")


def test_create_replicate_rolls_back_when_a_deploy_fails(shop, run_mila) -> None:
    assert deploy(run_mila).exit_code == 0
    shop.write("services/api/FAIL", "x")
    r = run_mila("envs", "create-replicate", "dev", "eu-central-1", "--no-prompt")
    assert r.exit_code == 1
    assert "rolling back" in r.output
    env = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)
    assert env["regions"] == list(REGIONS)
    assert not [x for x in env["records"] if x["region"] == "eu-central-1"]
    assert not stack_file(shop.root, "eu-central-1", "shop-shared-dev").exists()


@pytest.mark.parametrize("shop", ["aws"], indirect=True)
def test_deploy_refuses_an_account_not_configured_for_the_environment(shop, run_mila) -> None:
    text = (shop.root / "mila.toml").read_text()
    shop.write("mila.toml", text + '[accounts.prod]\nid = "999999999999"\nenvironments = ["dev"]\n')
    r = deploy(run_mila)
    assert r.exit_code == 2
    assert "must be deployed from account 999999999999 (prod)" in r.output
    assert "123456789012" in r.output
    assert not calls(shop.root)


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_ctrl_c_stops_the_run_releases_locks_and_exits_130(shop, run_mila) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    shop.service("slow", 'deployer = "fake"\nsleep = 30\n')
    env = {**os.environ, "MILA_PLUGINS": "mila_fake_deployer",
           "PYTHONPATH": str(Path(__file__).parents[1] / "support")}
    mila = str(Path(sys.executable).with_name("mila"))
    proc = subprocess.Popen([mila, "-C", str(shop.root), "deploy", "-e", "dev", "-s", "slow",
                             "--no-prompt", "-c", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log = shop.root / ".mila" / "logs" / "dev" / "slow.eu-west-1.log"
    deadline = time.monotonic() + 30
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists(), "the deploy never started"
    time.sleep(0.3)  # let both actions take their lock and mark their records
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "cancelled" in out
    assert json.loads(run_mila("locks", "-e", "dev", "--json").stdout) == []
    records = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)["records"]
    assert {(r["service"], r["status"]) for r in records} == {("slow", "failed")}
    assert plan(run_mila, "-s", "slow") == every("first_deploy", ("slow",))


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_a_lock_held_elsewhere_is_waited_for_then_exits_3(shop, run_mila) -> None:
    from datetime import timedelta

    from mila.project import load_project
    from mila.testing.contracts import make_owner

    state = load_project(shop.root).state
    state.acquire_lock("dev", "web", "eu-west-1", make_owner("alice"), timedelta(minutes=5))
    r = deploy(run_mila, "-s", "web", "--lock-timeout", "1")
    assert r.exit_code == 3, r.output
    assert "waiting for lock: held by alice@" in r.output
    assert "gave up after waiting 1 s" in r.output
    assert "last heartbeat 0 s ago" in r.output
    assert "mila release-lock -e dev -s web --force" in r.output
    # us-east-1 was free: deployed; eu-west-1 untouched and still first_deploy
    assert plan(run_mila, "-s", "web") == {("web", "eu-west-1"): "first_deploy",
                                           ("web", "us-east-1"): "no_changes"}


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_run_hooks_notify_and_plan_ready_vetoes(shop, run_mila, monkeypatch, tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer,mila_policy_plugin")
    monkeypatch.setenv("MILA_EVENTS", str(events))
    shop.write("infra/shared/FAIL", "x")
    r = deploy(run_mila)
    assert r.exit_code == 1
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    started = {(e["service"], e["region"]) for e in seen if e["hook"] == "started"}
    finished = {(e["service"], e["region"]): (e["status"], e["error"])
                for e in seen if e["hook"] == "finished"}
    # api waits for shared: never started, reported skipped; web and shared ran
    assert started == {(s, r) for s in ("shared", "web") for r in REGIONS}
    assert finished[("shared", "eu-west-1")] == ("failed", "shared refused to deploy")
    assert finished[("api", "eu-west-1")][0] == "skipped"
    assert finished[("web", "us-east-1")] == ("succeeded", None)
    # every call handed the hook the project (its config read from mila.toml)
    assert {e["project"] for e in seen} == {"shop"}

    # a plan that destroys web is vetoed: exit 2, the plugin is named, nothing runs
    (shop.root / "infra/shared/FAIL").unlink()
    import shutil
    shutil.rmtree(shop.root / "services" / "web")
    before = len(calls(shop.root))
    r = deploy(run_mila)
    assert r.exit_code == 2
    assert "the plan was refused" in r.output
    assert "plugin 'mila_policy_plugin': web in eu-west-1 would be destroyed from shop" \
        in r.output
    assert len(calls(shop.root)) == before


def test_a_local_only_plan_asks_for_no_cloud_identity(project, run_mila, monkeypatch,
                                                      tmp_path) -> None:
    """Local state + a deployer declaring no IAM permissions: no STS call, no boto3, no network;
    a CloudFormation service in the plan (it declares IAM statements) makes mila ask."""
    probe = tmp_path / "identity-asked"
    monkeypatch.setenv("MILA_IDENTITY_PROBE", str(probe))
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer,mila_identity_probe")
    project.root_config(backend="local")
    project.service("web", 'deployer = "fake"\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev").exit_code == 0
    probe.unlink(missing_ok=True)  # `mila init` shows the identity: the plan is what is tested
    r = run_mila("deploy", "-e", "dev", "--only-prompt")
    assert r.exit_code == 0, r.output
    assert "none needed" in r.output
    assert not probe.exists()
    project.write("services/api/template.yaml",
                  "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")
    project.commit_all()
    r = run_mila("deploy", "-e", "dev", "--only-prompt")
    assert r.exit_code == 0, r.output
    assert "111122223333" in r.output
    assert probe.read_text() == "asked\n"


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_destroy_replicate_of_the_only_region_refuses_before_destroying(shop, run_mila) -> None:
    assert run_mila("envs", "create", "solo", "--regions", "eu-west-1").exit_code == 0
    r = run_mila("deploy", "-e", "solo", "-s", "web", "--no-prompt")
    assert r.exit_code == 0, r.output
    r = run_mila("envs", "destroy-replicate", "solo", "eu-west-1", "--no-prompt")
    assert r.exit_code == 2, r.output
    assert "eu-west-1 is the only region of environment 'solo'" in r.output
    assert not [c for c in calls(shop.root) if c["op"] == "destroy"]
    records = json.loads(run_mila("envs", "describe", "solo", "--json").stdout)["records"]
    assert [(x["service"], x["status"]) for x in records] == [("web", "succeeded")]


@pytest.mark.parametrize("shop", ["local"], indirect=True)
def test_files_under_dot_mila_are_private(shop, run_mila) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        assert deploy(run_mila, "-s", "web").exit_code == 0
    finally:
        os.umask(old)
    mila_dir = shop.root / ".mila"
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(mila_dir) == 0o700
    assert mode(mila_dir / "logs") == mode(mila_dir / "logs" / "dev") == 0o700
    logs = list((mila_dir / "logs" / "dev").rglob("*.log"))
    assert len(logs) >= 2 and {mode(p) for p in logs} == {0o600}  # the last and the kept one
    assert {mode(p) for p in (mila_dir / "logs").rglob("*") if p.is_dir()} == {0o700}
    db = [p for p in mila_dir.iterdir() if p.name.startswith("state.db")]
    assert db and {mode(p) for p in db} == {0o600}
