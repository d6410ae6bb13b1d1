"""The ``shell`` deployer through mila's CLI on the ``local`` state backend: no AWS, no sandbox.

The projects are built and run with mila's pytester (the ``mila_project`` and ``run_mila``
fixtures of mila's pytest plugin): the CLI in-process, the plugin found by its entry point as a
user's ``pip install mila-shell-deployer`` would. One test runs the real ``mila`` console script
too, to prove the installed command finds it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mila_shell_deployer.deployer import ShellDeployer, expand

from mila.errors import DeployError
from mila.model import Action, ActionKind, Environment, Workspace, frozen_mapping
from mila.protocols import DeployContext
from mila.testing.project import MilaResult, ProjectFactory

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


#: no AWS at all: the local backend needs none, and nothing may reach for EC2 metadata
NO_AWS: dict[str, str | None] = {"AWS_EC2_METADATA_DISABLED": "true",
                                 "AWS_CONFIG_FILE": os.devnull,
                                 "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "NO_COLOR": "1"}

Mila = Callable[..., MilaResult]


@pytest.fixture
def mila(run_mila: Mila) -> Mila:
    """``run_mila`` without AWS credentials, failing the test on a non-zero exit unless
    ``check=False``."""

    def run(*args: str, check: bool = True) -> MilaResult:
        env = {**{k: None for k in os.environ if k.startswith("AWS_")}, **NO_AWS}
        result = run_mila(*args, env=env)
        if check and result.exit_code != 0:
            raise AssertionError(f"mila {' '.join(args)} exited {result.exit_code}:\n"
                                 f"{result.output}")
        return result

    return run


@pytest.fixture
def project(mila_project: ProjectFactory) -> Path:
    mila_project.root_config(name="demo", workspaces=["services/*"], backend="local")
    mila_project.service("shared", SHARED.removeprefix("[service]\n"))
    mila_project.service("api", API.removeprefix("[service]\n"), files={"handler.sh": "echo v1\n"})
    mila_project.write("envs/.env", "GREETING=hello\n")
    mila_project.write("services/api/envs/.env.dev", "TABLE=orders-${env}-${region}\n")
    return mila_project.root


def plan(mila: Mila) -> dict[tuple[str, str], str]:
    doc = mila("deploy", "-e", "dev", "--json", "--only-prompt").json
    return {(a["service"], a["region"]): a["action"] for a in doc["actions"]}


def test_mila_plugins_lists_the_shell_deployer(project: Path) -> None:
    """Through the installed ``mila`` console script, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([MILA, "-C", str(project), "plugins", "--json"], capture_output=True,
                            text=True, env={**env, "AWS_EC2_METADATA_DISABLED": "true"},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    (ours,) = [p for p in json.loads(result.stdout) if p["name"] == "shell-deployer"]
    assert ours["distribution"] == "mila-shell-deployer"
    assert ours["registers"] == {"deployer": ["shell"]}
    assert ours["hooks"] == ["mila_deployers"]


def test_mila_info_classifies_shell_workspaces_as_services(project: Path, mila: Mila) -> None:
    (project / "services" / "docs").mkdir()  # no mila.toml, no template: a package
    (project / "services" / "docs" / "README.md").write_text("x", encoding="utf-8")
    out = mila("info").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["api"][1:3] == ["service", "shell"]
    assert rows["shared"][1:3] == ["service", "shell"]
    assert rows["docs"][1] == "package"


def test_unknown_service_key_is_refused(project: Path, mila: Mila) -> None:
    config = project / "services" / "api" / "mila.toml"
    config.write_text(API.replace("[service]\n", '[service]\ndeploi = "typo"\n'), encoding="utf-8")
    result = mila("info", check=False)
    assert result.exit_code == 2
    assert "deploi" in result.stderr and "deploy" in result.stderr


def test_deploy_redeploy_fail_and_remove(project: Path, mila: Mila) -> None:
    mila("init")
    mila("envs", "create", "dev", "--regions", "eu-west-1,us-east-1")
    assert set(plan(mila).values()) == {"first_deploy"}
    mila("deploy", "-e", "dev", "--no-prompt")

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
    described = mila("envs", "describe", "dev", "--json").json
    outputs = {(r["service"], r["region"]): r["outputs"] for r in described["records"]}
    assert outputs[("api", "eu-west-1")] == {"Endpoint": "https://eu-west-1.example.com/dev/api"}
    assert outputs[("shared", "us-east-1")]["Url"] == "https://us-east-1.example.com/dev"
    # every line went to the action log, ${HOME} was left to the shell
    log = (project / ".mila" / "logs" / "dev" / "api.eu-west-1.log").read_text(encoding="utf-8")
    assert f"home is {Path.home()}" in log or f"home is {os.environ.get('HOME')}" in log

    assert set(plan(mila).values()) == {"no_changes"}
    (project / "services" / "api" / "handler.sh").write_text("echo v2\n", encoding="utf-8")
    assert plan(mila) == {("api", "eu-west-1"): "deploy", ("api", "us-east-1"): "deploy",
                             ("shared", "eu-west-1"): "no_changes",
                             ("shared", "us-east-1"): "no_changes"}

    # a failing command: exit 1, its last lines in the message, the record failed
    config = project / "services" / "api" / "mila.toml"
    config.write_text(API.replace('echo "home is ${HOME}"',
                                  'echo "step one"; echo "boom: no credentials" >&2; exit 7'),
                      encoding="utf-8")
    failed = mila("deploy", "-e", "dev", "--no-prompt", check=False)
    assert failed.exit_code == 1, failed.output
    shown = failed.output
    assert "exited with code 7" in shown and "boom: no credentials" in shown
    assert set(plan(mila).values()) == {"deploy", "no_changes"}

    # remove: destroy commands run, dependents first
    mila("remove", "-e", "dev", "--no-prompt")
    assert (project / "destroyed-eu-west-1.txt").read_text(encoding="utf-8").splitlines() == \
        ["destroyed api", "destroyed"]
    assert mila("envs", "describe", "dev", "--json").json["records"] == []


def test_a_service_whose_folder_is_gone_is_destroyed_by_its_recorded_command(
        project: Path, mila: Mila) -> None:
    """The deploy keeps the destroy command in the record's data (DeployResult.data); mila
    hands it back once the folder is deleted, and the command runs in the project's root."""
    mila("init")
    mila("envs", "create", "dev", "--regions", "eu-west-1")
    mila("deploy", "-e", "dev", "--no-prompt")
    described = mila("envs", "describe", "dev", "--json").json
    data = {r["service"]: r["data"] for r in described["records"]}
    assert data["api"]["destroy"].startswith("echo destroyed api")
    assert data["api"]["timeout_minutes"] == 60

    shutil.rmtree(project / "services" / "api")
    assert plan(mila)[("api", "eu-west-1")] == "destroy"
    mila("deploy", "-e", "dev", "--no-prompt")
    assert (project / "destroyed-eu-west-1.txt").read_text(encoding="utf-8") == "destroyed api\n"
    records = mila("envs", "describe", "dev", "--json").json["records"]
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
