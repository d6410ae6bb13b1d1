"""Why each action: a reason for each kind of change, in the plan JSON (`reasons`), with
`--why`, and from `mila why`. Local backend, the fake deployer."""

from __future__ import annotations

import json

import mila_fake_deployer
import pytest

from mila import hookimpl
from mila.project import load_project
from mila.protocols import DeployerType


@pytest.fixture
def shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["packages/*", "services/*"])
    project.package("core", files={"core.py": "V = 1\n"})
    project.service("shared", 'deployer = "fake"\n')
    project.service("api", 'deployer = "fake"\ndepends_on = ["shared", "core"]\n'
                           'parameters = { Topic = "${shared.Url}", Stage = "${env}" }\n',
                    files={"handler.py": "x = 1\n", "util.py": "y = 1\n"})
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    return project


def reasons(run_mila, *args: str) -> dict[str, list[str]]:
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt", *args)
    assert r.exit_code == 0, r.output
    return {a["service"]: a["reasons"] for a in json.loads(r.stdout)["actions"]
            if a["action"] != "no_changes"}


def test_file_changes_name_the_first_paths(shop, run_mila) -> None:
    shop.write("services/api/handler.py", "x = 2\n")
    (shop.root / "services/api/util.py").unlink()
    shop.write("services/api/new.py", "z = 1\n")
    assert reasons(run_mila) == {"api": ["added services/api/new.py",
                                         "removed services/api/util.py",
                                         "modified services/api/handler.py"]}
    r = run_mila("why", "-e", "dev", "api")
    assert r.exit_code == 0
    assert r.output.splitlines() == ["api in eu-west-1: deploy", "  added services/api/new.py",
                                     "  removed services/api/util.py",
                                     "  modified services/api/handler.py"]
    r = run_mila("deploy", "-e", "dev", "--only-prompt", "--why")
    assert "api in eu-west-1: deploy" in r.output and "  added services/api/new.py" in r.output


def test_dependency_and_parameter_changes(shop, run_mila) -> None:
    shop.write("packages/core/core.py", "V = 2\n")
    assert reasons(run_mila) == {"api": ["dependency core changed"]}
    shop.write("packages/core/core.py", "V = 1\n")
    shop.write("services/api/mila.toml", '[service]\ndeployer = "fake"\n'
               'depends_on = ["shared", "core"]\n'
               'parameters = { Topic = "${shared.Url}", Stage = "prod", Extra = "1" }\n')
    assert reasons(run_mila) == {"api": ["parameter Extra added", "parameter Stage changed"]}


def test_forced_failed_and_region_added(shop, run_mila) -> None:
    assert reasons(run_mila, "--force", "-s", "shared") == {"shared": ["forced"]}
    shop.write("services/shared/FAIL", "")
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 1
    (shop.root / "services/shared/FAIL").unlink()
    got = reasons(run_mila)
    assert got["shared"] == ["removed services/shared/FAIL",
                             "last action failed: shared refused to deploy"] or \
        got["shared"] == ["last action failed: shared refused to deploy"]

    load_project(shop.root).state.set_regions("dev", ["eu-west-1", "us-east-1"])
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    by_key = {(a["service"], a["region"]): a["reasons"] for a in json.loads(r.stdout)["actions"]}
    assert by_key[("api", "us-east-1")] == ["region us-east-1 added (deployed in eu-west-1)"]
    # -s api alone cannot work there: shared, whose output it reads, is not deployed there
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt", "-s", "api")
    assert r.exit_code == 2 and "not a deployed dependency in us-east-1" in r.output


def test_deployer_version_change(shop, run_mila, monkeypatch) -> None:
    @hookimpl
    def mila_deployers():
        return [DeployerType("fake", create=lambda config: mila_fake_deployer.FakeDeployer(),
                             version="2", config_keys=frozenset({"fail", "sleep", "warn", "ids"}))]

    monkeypatch.setattr(mila_fake_deployer, "mila_deployers", mila_deployers)
    assert reasons(run_mila) == {"api": ["dependency shared changed",
                                         "deployer version changed: fake 1 → 2"],
                                 "shared": ["deployer version changed: fake 1 → 2"]}
