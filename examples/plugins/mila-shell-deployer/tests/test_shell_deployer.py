"""The ``shell`` deployer through the real ``mila`` console script (found by its entry point),
on the ``local`` state backend: no AWS, no sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mila_shell_deployer.deployer import ShellDeployer, expand

from mila.errors import DeployError
from mila.model import Action, ActionKind, Environment, Workspace, frozen_mapping
from mila.protocols import DeployContext

MILA = shutil.which("mila", path=str(Path(sys.executable).parent)) or "mila"

SHARED = '''[service]
deployer = "shell"
deploy = """
echo "deploying ${service} to ${env}/${region} as ${stack_name}"
echo "::output Url=https://${region}.example.com/${env}"
echo "::output Bucket=$MILA_PROJECT-$MILA_ENV-$MILA_REGION"
"""
destroy = "echo destroyed >> ../../destroyed-${region}.txt"
'''

API = '''[service]
deployer = "shell"
depends_on = ["shared"]
parameters = { Stage = "${env}-${region}" }
deploy = """
env | grep -E '^(MILA_|AWS_REGION=|TABLE=|GREETING=)' | sort > ../../api-env-${region}.txt
echo "home is ${HOME}"
echo "::output Endpoint=${shared.Url}/api"
"""
destroy = 'echo destroyed api >> "$MILA_ROOT/destroyed-${region}.txt"'
'''


def mila(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # no AWS at all: the local backend needs none, and nothing may reach for EC2 metadata
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, NO_COLOR="1")
    result = subprocess.run([MILA, "-C", str(project), *args], capture_output=True, text=True,
                            env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"mila {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mila.toml").write_text(
        '[project]\nname = "demo"\ndefault_region = "eu-west-1"\nworkspaces = ["services/*"]\n\n'
        '[state]\nbackend = "local"\n', encoding="utf-8")
    for name, config in (("shared", SHARED), ("api", API)):
        (tmp_path / "services" / name).mkdir(parents=True)
        (tmp_path / "services" / name / "mila.toml").write_text(config, encoding="utf-8")
    (tmp_path / "services" / "api" / "handler.sh").write_text("echo v1\n", encoding="utf-8")
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / ".env").write_text("GREETING=hello\n", encoding="utf-8")
    (tmp_path / "services" / "api" / "envs").mkdir()
    (tmp_path / "services" / "api" / "envs" / ".env.dev").write_text(
        "TABLE=orders-${env}-${region}\n", encoding="utf-8")
    return tmp_path


def plan(project: Path) -> dict[tuple[str, str], str]:
    doc = json.loads(mila(project, "deploy", "-e", "dev", "--json", "--only-prompt").stdout)
    return {(a["service"], a["region"]): a["action"] for a in doc["actions"]}


def test_mila_plugins_lists_the_shell_deployer(project: Path) -> None:
    plugins = json.loads(mila(project, "plugins", "--json").stdout)
    (ours,) = [p for p in plugins if p["name"] == "shell-deployer"]
    assert ours["distribution"] == "mila-shell-deployer"
    assert ours["registers"] == {"deployer": ["shell"]}
    assert ours["hooks"] == ["mila_deployers"]


def test_mila_info_classifies_shell_workspaces_as_services(project: Path) -> None:
    (project / "services" / "docs").mkdir()  # no mila.toml, no template: a package
    (project / "services" / "docs" / "README.md").write_text("x", encoding="utf-8")
    out = mila(project, "info").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["api"][1:3] == ["service", "shell"]
    assert rows["shared"][1:3] == ["service", "shell"]
    assert rows["docs"][1] == "package"


def test_unknown_service_key_is_refused(project: Path) -> None:
    config = project / "services" / "api" / "mila.toml"
    config.write_text(API.replace("[service]\n", '[service]\ndeploi = "typo"\n'), encoding="utf-8")
    result = mila(project, "info", check=False)
    assert result.returncode == 2
    assert "deploi" in result.stderr and "deploy" in result.stderr


def test_deploy_redeploy_fail_and_remove(project: Path) -> None:
    mila(project, "init")
    mila(project, "envs", "create", "dev", "--regions", "eu-west-1,us-east-1")
    assert set(plan(project).values()) == {"first_deploy"}
    mila(project, "deploy", "-e", "dev", "--no-prompt")

    # variables: the action's, the parameters, every dependency output
    env = dict(line.split("=", 1) for line in
               (project / "api-env-us-east-1.txt").read_text(encoding="utf-8").splitlines())
    assert env["MILA_ENV"] == "dev" and env["MILA_REGION"] == "us-east-1"
    assert env["MILA_SERVICE"] == "api" and env["MILA_STACK_NAME"] == "demo-api-dev"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["MILA_PARAM_STAGE"] == "dev-us-east-1"
    assert env["MILA_OUTPUT_SHARED_URL"] == "https://us-east-1.example.com/dev"
    assert env["MILA_OUTPUT_SHARED_BUCKET"] == "demo-dev-us-east-1"
    # the environment files' variables, resolved in the action's region
    assert env["TABLE"] == "orders-dev-us-east-1" and env["GREETING"] == "hello"

    # outputs recorded per region, ${shared.Url} substituted in the command
    described = json.loads(mila(project, "envs", "describe", "dev", "--json").stdout)
    outputs = {(r["service"], r["region"]): r["outputs"] for r in described["records"]}
    assert outputs[("api", "eu-west-1")] == {"Endpoint": "https://eu-west-1.example.com/dev/api"}
    assert outputs[("shared", "us-east-1")]["Url"] == "https://us-east-1.example.com/dev"
    # every line went to the action log, ${HOME} was left to the shell
    log = (project / ".mila" / "logs" / "dev" / "api.eu-west-1.log").read_text(encoding="utf-8")
    assert f"home is {Path.home()}" in log or f"home is {os.environ.get('HOME')}" in log

    assert set(plan(project).values()) == {"no_changes"}
    (project / "services" / "api" / "handler.sh").write_text("echo v2\n", encoding="utf-8")
    assert plan(project) == {("api", "eu-west-1"): "deploy", ("api", "us-east-1"): "deploy",
                             ("shared", "eu-west-1"): "no_changes",
                             ("shared", "us-east-1"): "no_changes"}

    # a failing command: exit 1, its last lines in the message, the record failed
    config = project / "services" / "api" / "mila.toml"
    config.write_text(API.replace('echo "home is ${HOME}"',
                                  'echo "step one"; echo "boom: no credentials" >&2; exit 7'),
                      encoding="utf-8")
    failed = mila(project, "deploy", "-e", "dev", "--no-prompt", check=False)
    assert failed.returncode == 1, failed.stderr
    shown = failed.stdout + failed.stderr
    assert "exited with code 7" in shown and "boom: no credentials" in shown
    assert set(plan(project).values()) == {"deploy", "no_changes"}

    # remove: destroy commands run, dependents first
    mila(project, "remove", "-e", "dev", "--no-prompt")
    assert (project / "destroyed-eu-west-1.txt").read_text(encoding="utf-8").splitlines() == \
        ["destroyed api", "destroyed"]
    assert json.loads(mila(project, "envs", "describe", "dev", "--json").stdout)["records"] == []


def test_a_service_whose_folder_is_gone_is_destroyed_by_its_recorded_command(
        project: Path) -> None:
    """The deploy keeps the destroy command in the record's data (DeployResult.data); mila
    hands it back once the folder is deleted, and the command runs in the project's root."""
    mila(project, "init")
    mila(project, "envs", "create", "dev", "--regions", "eu-west-1")
    mila(project, "deploy", "-e", "dev", "--no-prompt")
    described = json.loads(mila(project, "envs", "describe", "dev", "--json").stdout)
    data = {r["service"]: r["data"] for r in described["records"]}
    assert data["api"]["destroy"].startswith("echo destroyed api")
    assert data["api"]["timeout_minutes"] == 60

    shutil.rmtree(project / "services" / "api")
    assert plan(project)[("api", "eu-west-1")] == "destroy"
    mila(project, "deploy", "-e", "dev", "--no-prompt")
    assert (project / "destroyed-eu-west-1.txt").read_text(encoding="utf-8") == "destroyed api\n"
    records = json.loads(mila(project, "envs", "describe", "dev", "--json").stdout)["records"]
    assert [r["service"] for r in records] == ["shared"]


def test_folder_gone_and_no_recorded_command_is_a_clear_error(tmp_path: Path) -> None:
    ctx = DeployContext(project="demo", environment=Environment("dev", ("eu-west-1",)),
                        region="eu-west-1", workspace=None, root=tmp_path)
    with pytest.raises(DeployError, match="keeps no `destroy` command"):
        ShellDeployer("demo").destroy(action(ActionKind.DESTROY), ctx)


# ----------------------------------------------------------------------- the deployer alone


def context(tmp_path: Path, settings: dict[str, str], **kwargs: object) -> DeployContext:
    ws = Workspace("job", "job", "service", deployer="shell", settings=frozen_mapping(settings),
                   timeout_minutes=1)
    (tmp_path / "job").mkdir(exist_ok=True)
    return DeployContext(project="demo", environment=Environment("dev", ("eu-west-1",)),
                         region="eu-west-1", workspace=ws, root=tmp_path, **kwargs)  # type: ignore[arg-type]


def action(kind: ActionKind = ActionKind.FIRST_DEPLOY) -> Action:
    return Action("dev", "job", "eu-west-1", kind, "c", None, "shell")


def test_cancel_stops_the_command(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"deploy": "echo started; sleep 30"})
    timer = threading.Timer(0.5, ctx.cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(DeployError, match="cancelled"):
        ShellDeployer("demo").deploy(action(), ctx)
    assert time.monotonic() - started < 10


def test_missing_command_is_a_config_error(tmp_path: Path) -> None:
    from mila.errors import ConfigError

    with pytest.raises(ConfigError, match="destroy"):
        ShellDeployer("demo").destroy(action(ActionKind.DESTROY),
                                      context(tmp_path, {"deploy": "true"}))


def test_expand_leaves_shell_variables_alone() -> None:
    values = {"env": "dev", "region": "eu-west-1"}
    outputs = {"shared": {"Url": "u"}}
    assert expand("${env} ${region} ${HOME} $PATH ${shared.Url}", values, outputs) == \
        "dev eu-west-1 ${HOME} $PATH u"
    from mila.errors import ConfigError

    with pytest.raises(ConfigError, match="Url"):
        expand("${shared.Nope}", values, outputs)
