"""Plugin loading: entry points, config and MILA_PLUGINS modules, clear errors, duplicates."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from mila import hookimpl
from mila.errors import PluginError
from mila.plugins import build_plugin_manager
from mila.protocols import DeployerType


def module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    sys.modules[name] = mod
    return mod


def deployers_hook(*names: str):
    @hookimpl
    def mila_deployers():
        return [DeployerType(n, create=lambda c: None) for n in names]
    return mila_deployers


def test_built_ins_are_loaded_through_entry_points() -> None:
    pm = build_plugin_manager(environ={})
    infos = pm.infos
    assert {"git", "aws", "local", "cloudformation", "sandbox"} <= set(infos)
    assert all(infos[n].distribution == "mila" and infos[n].source == "entry point"
               for n in ("git", "aws", "local", "cloudformation", "sandbox"))


def test_entry_point_plugin_and_env_plugins_register() -> None:
    module("third_party_deployer", mila_deployers=deployers_hook("thirdparty"))
    module("env_plugin", mila_deployers=deployers_hook("fromenv"))
    ep = EntryPoint("third", "third_party_deployer", "mila")
    pm = build_plugin_manager(environ={"MILA_PLUGINS": "env_plugin"}, entry_points=lambda: [ep])
    assert set(pm.registry.deployers) == {"thirdparty", "fromenv"}
    assert pm.infos["env_plugin"].source == "MILA_PLUGINS"
    assert pm.registered_by("third") == {"deployer": ["thirdparty"]}
    assert pm.hooks_of("third") == ["mila_deployers"]


def test_import_failure_names_the_plugin() -> None:
    ep = EntryPoint("broken", "no_such_module_anywhere", "mila")
    with pytest.raises(PluginError, match="plugin 'broken'.*failed to import.*ModuleNotFoundError"):
        build_plugin_manager(environ={}, entry_points=lambda: [ep])
    with pytest.raises(PluginError, match="'nope_mod' \\(from config\\) failed to import"):
        build_plugin_manager(["nope_mod"], environ={}, entry_points=lambda: [])


def test_duplicate_registrations_name_both_plugins() -> None:
    module("dup_a", mila_deployers=deployers_hook("same"))
    module("dup_b", mila_deployers=deployers_hook("same"))
    pm = build_plugin_manager(["dup_a", "dup_b"], environ={}, entry_points=lambda: [])
    with pytest.raises(PluginError, match="deployer 'same' is registered twice.*dup_a.*dup_b"):
        _ = pm.registry
    module("dup_name", mila_deployers=deployers_hook("x"))
    with pytest.raises(PluginError, match="two plugins are named 'dup_name'"):
        build_plugin_manager(["dup_name"], environ={"MILA_PLUGINS": "dup_name"},
                             entry_points=lambda: [])


def test_disable_plugins_and_typo_hooks() -> None:
    ep = EntryPoint("broken", "no_such_module_anywhere", "mila")
    pm = build_plugin_manager(disabled=["broken"], environ={}, entry_points=lambda: [ep])
    assert "broken" not in pm.infos

    @hookimpl
    def mila_deployer():  # missing "s": must be caught at start-up
        return []
    module("typo_plugin", mila_deployer=mila_deployer)
    with pytest.raises(PluginError, match="mila_deployer"):
        build_plugin_manager(["typo_plugin"], environ={}, entry_points=lambda: [])


def test_a_plugin_command_cannot_replace_a_core_command(run_mila, project, monkeypatch) -> None:
    import click

    @click.command("plugins")
    def evil() -> None:
        click.echo("evil")

    @click.command("hello")
    def hello() -> None:
        click.echo("hello from plugin")

    @hookimpl
    def mila_commands():
        return [evil, hello]

    @hookimpl
    def good_commands():
        return [hello]

    module("cmd_plugin", mila_commands=mila_commands)
    module("good_cmd_plugin", mila_commands=good_commands)
    project.root_config(workspaces=[])
    monkeypatch.setenv("MILA_PLUGINS", "good_cmd_plugin")
    assert run_mila("hello").output == "hello from plugin\n"
    monkeypatch.setenv("MILA_PLUGINS", "cmd_plugin")
    result = run_mila("hello")
    assert result.exit_code == 2
    assert "plugin 'cmd_plugin' adds a command 'plugins', which mila already has" in result.output
    assert "evil" not in run_mila("plugins", "--json").output


def test_hooks_called_by_the_core_pass_each_plugin_only_its_arguments() -> None:
    """pluggy lets an implementation declare fewer arguments than the spec: every hook the core
    calls one plugin at a time (call_each) must honour that, and honour wrappers."""
    from mila.model import Plan, Workspace

    seen: list[str] = []

    @hookimpl
    def mila_plan_ready():
        return ["no reason needed"]

    @hookimpl
    def mila_checksum_inputs(region):
        return {"region": region}

    @hookimpl(wrapper=True)
    def mila_checksum_inputs_wrapper(service):
        seen.append(service.name)
        return (yield)

    @hookimpl
    def mila_deployers():
        return [DeployerType("lean", create=lambda c: None)]

    module("lean_plugin", mila_plan_ready=mila_plan_ready, mila_checksum_inputs=mila_checksum_inputs,
           mila_deployers=mila_deployers)
    wrapper = module("wrapping_plugin")
    mila_checksum_inputs_wrapper.__name__ = "mila_checksum_inputs"
    wrapper.mila_checksum_inputs = mila_checksum_inputs_wrapper
    pm = build_plugin_manager(environ={"MILA_PLUGINS": "lean_plugin,wrapping_plugin"},
                              entry_points=lambda: [])
    assert "lean" in pm.registry.deployers
    plan = Plan("dev", ("eu-west-1",), ())
    assert pm.call_each("mila_plan_ready", plan=plan, project=None) == [("lean_plugin", ["no reason needed"])]
    ws = Workspace("api", "services/api", "service")
    assert pm.call_each("mila_checksum_inputs", service=ws, environment="dev",
                        region="eu-west-1") == [("lean_plugin", {"region": "eu-west-1"})]
    assert seen == ["api"]  # the wrapper ran around the implementation


def test_a_plugin_failing_in_a_hook_is_named() -> None:
    @hookimpl
    def mila_plan_ready(plan):
        raise KeyError("boom")

    module("raising_plugin", mila_plan_ready=mila_plan_ready)
    pm = build_plugin_manager(environ={"MILA_PLUGINS": "raising_plugin"}, entry_points=lambda: [])
    from mila.model import Plan

    with pytest.raises(PluginError, match="plugin 'raising_plugin'.*failed in mila_plan_ready"):
        pm.call_each("mila_plan_ready", plan=Plan("dev", (), ()), project=None)
