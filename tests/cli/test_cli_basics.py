"""The CLI shell: version, plugins, info, errors as one line, logs, plain output for CI."""

from __future__ import annotations

import json
import re

from mila import __version__


def test_version(run_mila) -> None:
    r = run_mila("--version")
    assert r.exit_code == 0 and r.output.strip() == f"mila, version {__version__}"


def test_plugins_json_lists_the_built_ins_with_hooks_and_registrations(project, run_mila) -> None:
    project.root_config(workspaces=[])
    r = run_mila("plugins", "--json")
    assert r.exit_code == 0
    plugins = {p["name"]: p for p in json.loads(r.stdout)}
    assert {"git", "aws", "local", "cloudformation", "sandbox"} <= set(plugins)
    for name in ("git", "aws", "local", "cloudformation", "sandbox"):
        assert plugins[name]["distribution"] == "mila" and plugins[name]["source"] == "entry point"
    assert plugins["git"]["registers"]["hasher"] == ["fs", "git"]
    assert "mila_hashers" in plugins["git"]["hooks"]
    assert plugins["aws"]["registers"]["state backend"] == ["aws"]
    assert plugins["local"]["registers"]["state backend"] == ["local"]
    assert plugins["cloudformation"]["registers"]["deployer"] == ["cloudformation", "sam"]
    assert plugins["sandbox"]["registers"]["command"] == ["sandbox"]
    table = run_mila("plugins").output
    assert re.search(r"cloudformation\s+mila 0\.1\.0", table)


def test_info_graph_and_one_workspace(project, run_mila, monkeypatch) -> None:
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config()
    project.package("core")
    project.service("api", 'deployer = "fake"\n',
                    files={"pyproject.toml": '[project]\nname = "api"\ndependencies = ["core"]\n'})
    r = run_mila("info")
    assert r.exit_code == 0
    assert re.search(r"api\s+service\s+fake\s+services/api\s+core", r.output)
    assert re.search(r"core\s+package\s+-\s+packages/core", r.output)
    r = run_mila("info", "--graph")
    assert "api" in r.output and "└── core" in r.output
    r = run_mila("info", "-s", "core")
    assert "dependents: api" in r.output
    r = run_mila("info", "-s", "nope")
    assert r.exit_code == 2 and "no workspace named 'nope'" in r.output


def test_errors_are_one_line_and_tracebacks_only_with_verbose(project, run_mila) -> None:
    project.write("mila.toml", '[project]\nname = "shop"\ndefault_region = "mars-1"\n')
    r = run_mila("info")
    assert r.exit_code == 2
    assert r.output.startswith("error: mila.toml: project.default_region: 'mars-1' is not an AWS region")
    assert "Traceback" not in r.output
    r = run_mila("-v", "info")
    assert r.exit_code == 2 and "Traceback" in r.output


def test_no_project_gives_a_hint(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from mila.cli import cli

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["info"])
    assert r.exit_code == 2 and "no mila.toml found" in r.output and "-C DIR" in r.output


def test_plain_timestamped_lines_and_json_logs_in_ci(project, run_mila, monkeypatch) -> None:
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config()
    project.service("api", 'deployer = "fake"\nfail = true\n')
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev").exit_code == 0
    r = run_mila("--log-format", "json", "deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 1
    assert re.search(r"^\d\d:\d\d:\d\d api eu-west-1 first_deploy: started$", r.output, re.M)
    assert re.search(r"^\d\d:\d\d:\d\d api eu-west-1 first_deploy: failed", r.output, re.M)
    logs = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    failure = next(entry for entry in logs if entry["event"] == "action failed")
    assert failure["service"] == "api" and failure["region"] == "eu-west-1"
    assert failure["level"] == "warning"
    assert "\x1b[" not in r.output  # no colour codes without a terminal


def test_a_bad_value_from_the_environment_names_the_variable(run_mila, monkeypatch) -> None:
    monkeypatch.setenv("MILA_LOG_FORMAT", "jsn")
    r = run_mila("envs", "list")
    assert r.exit_code == 2
    assert "Invalid value for $MILA_LOG_FORMAT: 'jsn' is not one of 'console', 'json'." in r.output
    assert "--log-format" not in r.output.split("Error:")[1]
    r = run_mila("--log-format", "jsn", "envs", "list")  # typed: the flag is named
    assert r.exit_code == 2 and "Invalid value for '--log-format'" in r.output
