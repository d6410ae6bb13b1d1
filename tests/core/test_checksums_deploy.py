"""Checksums in a deploy: inputs reach the plan, their values never reach the state, and a
``mila_detect_change`` plugin overrides the default rule (fake deployer, local state)."""

from __future__ import annotations

import json

import mila_hashtest
import pytest

ENV = {"MILA_PLUGINS": "mila_fake_deployer,mila_hashtest"}
SECRET = "p4ssw0rd-never-in-clear"


@pytest.fixture
def shop(project, run_mila):
    project.root_config()
    project.service("api", 'deployer = "fake"\n')
    project.service("web", 'deployer = "fake"\n')
    project.commit_all()
    assert run_mila("init", env=ENV).exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1", env=ENV).exit_code == 0
    return project


def plan(run_mila) -> dict[str, str]:
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt", env=ENV)
    assert r.exit_code == 0, r.output
    return {a["service"]: a["action"] for a in json.loads(r.stdout)["actions"]}


def deploy(run_mila) -> None:
    r = run_mila("deploy", "-e", "dev", "--no-prompt", env=ENV)
    assert r.exit_code == 0, r.output


def test_inputs_redeploy_and_are_never_stored_in_clear(shop, run_mila, monkeypatch) -> None:
    secret = {"value": SECRET}
    monkeypatch.setattr(mila_hashtest, "INPUTS",
                        lambda s, e, r: {"DbPassword": secret["value"]} if s == "api" else None)
    deploy(run_mila)
    assert plan(run_mila) == {"api": "no_changes", "web": "no_changes"}
    # what `mila checksums` prints is what was recorded for a service without inputs
    printed = json.loads(run_mila("checksums", "--json", env=ENV).stdout)["services"]
    from mila.project import load_project

    recorded = {r.service: r.checksum for r in load_project(shop.root, environ=ENV).state.records("dev")}
    assert recorded["web"] == printed["web"]["checksum"]
    assert recorded["api"] != printed["api"]["checksum"]  # the input is folded in

    secret["value"] = "rotated"
    assert plan(run_mila) == {"api": "deploy", "web": "no_changes"}
    deploy(run_mila)
    for path in (shop.root / ".mila").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and b"rotated" not in data, path


def test_detect_change_plugin_overrides_the_default_rule(shop, run_mila, monkeypatch) -> None:
    deploy(run_mila)
    monkeypatch.setattr(mila_hashtest, "DETECT",
                        lambda s, r: "deploy" if s == "web" else None)
    assert plan(run_mila) == {"api": "no_changes", "web": "deploy"}
    shop.write("services/api/handler.py", "changed = True\n")
    monkeypatch.setattr(mila_hashtest, "DETECT",
                        lambda s, r: "no_changes" if s == "api" else None)
    assert plan(run_mila) == {"api": "no_changes", "web": "no_changes"}
    monkeypatch.setattr(mila_hashtest, "DETECT", mila_hashtest.no_opinion)
    assert plan(run_mila) == {"api": "deploy", "web": "no_changes"}
