"""The CLI as people and pipelines type it: aliases, environment variables, global options
anywhere, "did you mean", `python -m mila`, shell completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mila.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def mila(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


@pytest.fixture
def shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config()
    project.package("common")
    project.service("api", 'deployer = "fake"\n',
                    files={"pyproject.toml": '[project]\nname = "api"\ndependencies = ["common"]\n'})
    project.service("users", 'deployer = "fake"\n')
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    return project


def test_python_dash_m_mila_runs_the_cli() -> None:
    r = subprocess.run([sys.executable, "-m", "mila", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("mila, version ")


def test_default_concurrency_is_half_the_threads_but_at_least_4(monkeypatch) -> None:
    from mila import orchestrator

    for cpus, expected in ((1, 4), (2, 4), (8, 4), (12, 6), (64, 32), (None, 4)):
        monkeypatch.setattr(orchestrator.os, "cpu_count", lambda c=cpus: c)
        assert orchestrator.default_concurrency() == expected, cpus


def test_yes_mila_env_and_global_options_after_the_command(shop) -> None:
    root = str(shop.root)
    # -C and -v after the subcommand, MILA_ENV for -e, --yes for --no-prompt
    r = mila("deploy", "-C", root, "--yes", "-v", env={"MILA_ENV": "dev"})
    assert r.exit_code == 0, r.output
    assert "first_deploy" in r.output
    r = mila("history", "--project-dir", root, "--log-format", "json", env={"MILA_ENV": "dev"})
    assert r.exit_code == 0 and "api" in r.output
    r = mila("history", f"--project-dir={root}", env={"MILA_ENV": "nope"})
    assert r.exit_code == 2 and "environment 'nope' does not exist" in r.output
    r = mila("history", "-C", root, env={"MILA_ENV": "dev", "MILA_LOG_FORMAT": "yaml"})
    assert r.exit_code == 2 and "yaml" in r.output  # the variable is read (and checked)
    r = mila("remove", "-C", root, "-e", "dev", "-s", "users", "--yes")
    assert r.exit_code == 0, r.output
    assert "destroy" in r.output


def test_global_options_are_not_taken_from_after_a_double_dash() -> None:
    from mila.cli.main import hoist_global_options

    assert hoist_global_options(["deploy", "-e", "dev", "-vv", "-C", "x", "--", "-v"]) == \
        ["-vv", "-C", "x", "deploy", "-e", "dev", "--", "-v"]
    assert hoist_global_options(["-C", "x", "history", "--log-format=json"]) == \
        ["--log-format=json", "-C", "x", "history"]


def test_destroy_help_names_the_command_it_aliases() -> None:
    out = " ".join(mila("destroy", "--help").output.split())
    assert "Alias of `mila remove`" in out and "Alias: destroy" not in out
    assert "Alias: destroy" in " ".join(mila("remove", "--help").output.split())


def test_services_is_spelled_the_same_everywhere() -> None:
    for command in (["deploy"], ["remove"], ["history"], ["release-lock"], ["checksums"],
                    ["info"], ["env", "show"], ["outputs"]):
        out = mila(*command, "--help").output
        if command == ["outputs"]:  # one SERVICE argument
            assert "--region" in out and "-e, --env" in out
            continue
        assert "-s, --services" in out, command
        assert "--service " not in out, command


def test_did_you_mean(shop, run_mila) -> None:
    r = run_mila("deplyo", "-e", "dev")
    assert r.exit_code == 2 and "Did you mean 'deploy'?" in r.output
    r = run_mila("deploy", "-e", "dve", "--only-prompt")
    assert r.exit_code == 2 and "environment 'dve' does not exist (did you mean 'dev'?)" in r.output
    r = run_mila("deploy", "-e", "dev", "-s", "userz", "--only-prompt")
    assert r.exit_code == 2 and "unknown service 'userz'" in r.output
    assert "did you mean 'users'?" in r.output
    r = run_mila("deploy", "-e", "dev", "-s", "common", "--only-prompt")
    assert r.exit_code == 2 and "'common' is a package, not a service" in r.output
    assert "services that use it: api" in r.output
    r = run_mila("remove", "-e", "dev", "-s", "common")
    assert r.exit_code == 2 and "'common' is a package" in r.output
    r = run_mila("envs", "create", "qa", "--regions", "eu-wset-1")
    assert r.exit_code == 2 and "did you mean 'eu-west-1'" in r.output
    assert "ap-southeast" not in r.output  # not the 38 regions
    r = run_mila("info", "-s", "comon")
    assert r.exit_code == 2 and "did you mean 'common'?" in r.output


# ----------------------------------------------------------------------------- completion


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_generated(shell) -> None:
    r = mila("completion", shell)
    assert r.exit_code == 0
    assert "_MILA_COMPLETE" in r.output and f"{shell}_complete" in r.output


def complete(root: Path, words: str, env: dict[str, str]) -> list[str]:
    """What the shell gets for ``mila <words><TAB>``, through click's real protocol."""
    args = words.split(" ")
    environ = {**os.environ, **env, "_MILA_COMPLETE": "bash_complete",
               "COMP_WORDS": " ".join(["mila", "-C", str(root), *args]),
               "COMP_CWORD": str(len(args) + 2)}
    r = subprocess.run([sys.executable, "-m", "mila"], env=environ, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert all("," in line for line in r.stdout.splitlines()), r.stdout
    return [line.split(",", 1)[1] for line in r.stdout.splitlines()]


def test_completion_of_environment_and_service_names(shop) -> None:
    env = {"MILA_PLUGINS": "mila_fake_deployer",
           "PYTHONPATH": str(ROOT / "tests" / "support")}
    assert complete(shop.root, "deploy -e ", env) == ["dev"]
    assert complete(shop.root, "deploy -e dev -s u", env) == ["users"]
    assert complete(shop.root, "history -e dev -s api,", env) == ["api,users"]
    assert "deploy" in complete(shop.root, "dep", env)


# ----------------------------------------------------------------------------- packaging


@pytest.mark.slow
def test_wheel_builds_without_deprecation_warnings_and_runs(tmp_path) -> None:
    """The distribution builds as a wheel (SPDX licence, no setuptools deprecation) and the
    installed wheel, not the editable checkout, runs with its built-in plugins."""
    out = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out),
                        str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "SetuptoolsDeprecationWarning" not in r.stdout + r.stderr
    (wheel,) = out.glob("mila-*.whl")
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = ("import mila, mila_git, sys; from importlib.metadata import distribution;"
            "print(mila.__file__); print(mila_git.__file__);"
            "print(distribution('mila').metadata['License-Expression'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(line.startswith(str(target)) for line in lines[:2]), lines
    assert lines[2] == "MIT"
    r = subprocess.run([sys.executable, "-m", "mila", "plugins", "--json"], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(target)})
    assert r.returncode == 0 and '"cloudformation"' in r.stdout, r.stderr


def test_the_bash_script_completes_from_the_project(shop) -> None:
    """The generated script itself, loaded in bash, asks mila and fills COMPREPLY."""
    script = ('eval "$(mila completion bash)"; COMP_WORDS=(mila -C "$ROOT" deploy -e dev -s ""); '
              'COMP_CWORD=7; _mila_completion mila; printf "%s\\n" "${COMPREPLY[@]}"')
    env = {**os.environ, "ROOT": str(shop.root), "MILA_PLUGINS": "mila_fake_deployer",
           "PYTHONPATH": str(ROOT / "tests" / "support"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["api", "users"]


def test_envs_create_exist_ok_is_idempotent(project, run_mila) -> None:
    project.root_config()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "pr-12", "--exist-ok").exit_code == 0
    r = run_mila("envs", "create", "pr-12")
    assert r.exit_code == 2 and "already exists" in r.output
    r = run_mila("envs", "create", "pr-12", "--exist-ok", "--regions", "eu-west-1,us-east-1")
    assert r.exit_code == 0 and "already exists in eu-west-1" in r.output
    assert "not adding us-east-1" in r.output
