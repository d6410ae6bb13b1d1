"""Outputs consumed are inputs: the stale-output scenario end to end, the remove refusal,
destroys that wait only for their own dependents, and create-replicate with pinned regions.
Local backend, the fake deployer (whose ``Id`` output is new each time a stack is created)."""

from __future__ import annotations

import json
import shutil

import pytest
from mila_fake_deployer import calls, stack_file


@pytest.fixture
def pubsub(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"])
    project.service("sqs-queue", 'deployer = "fake"\nids = true\n')
    project.service("sns-topic", 'deployer = "fake"\ndepends_on = ["sqs-queue"]\n'
                                 'parameters = { Queue = "${sqs-queue.Id}" }\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    return project


def plan(run_mila) -> dict[str, tuple[str, list[str]]]:
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    assert r.exit_code == 0, r.output
    return {a["service"]: (a["action"], a["reasons"]) for a in json.loads(r.stdout)["actions"]}


def topic_queue(root) -> str:
    return json.loads(stack_file(root, "eu-west-1", "shop-sns-topic-dev").read_text())[
        "outputs"]["ParamQueue"]


def queue_id(root) -> str:
    return json.loads(stack_file(root, "eu-west-1", "shop-sqs-queue-dev").read_text())[
        "outputs"]["Id"]


def test_a_recreated_dependency_redeploys_its_consumers(pubsub, run_mila) -> None:
    first_id = queue_id(pubsub.root)
    assert topic_queue(pubsub.root) == first_id
    state = (run_mila("envs", "describe", "dev", "--json").stdout,
             run_mila("history", "-e", "dev", "--json").stdout)

    r = run_mila("remove", "-e", "dev", "-s", "sqs-queue", "--no-prompt")
    assert r.exit_code == 2, r.output
    assert "sqs-queue is consumed by sns-topic in eu-west-1" in r.output
    assert "--force" in r.output
    assert (run_mila("envs", "describe", "dev", "--json").stdout,
            run_mila("history", "-e", "dev", "--json").stdout) == state

    assert run_mila("remove", "-e", "dev", "-s", "sqs-queue", "--no-prompt", "--force").exit_code == 0
    assert plan(run_mila) == {
        "sqs-queue": ("first_deploy", ["never deployed"]),
        "sns-topic": ("deploy", ["output sqs-queue.Id known after apply"]),
    }
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert queue_id(pubsub.root) != first_id
    assert topic_queue(pubsub.root) == queue_id(pubsub.root)  # not the deleted queue's id
    # the record holds the checksum of the outputs really used: the next plan is quiet
    assert {s: a for s, (a, _) in plan(run_mila).items()} == {
        "sqs-queue": "no_changes", "sns-topic": "no_changes"}


def test_an_output_changed_behind_the_plan_is_a_reason(pubsub, run_mila) -> None:
    # the queue was recreated by a run that did not include the topic
    stack_file(pubsub.root, "eu-west-1", "shop-sqs-queue-dev").unlink()
    assert run_mila("deploy", "-e", "dev", "-s", "sqs-queue", "--no-prompt", "--force").exit_code == 0
    assert plan(run_mila)["sns-topic"] == ("deploy", ["output sqs-queue.Id changed"])


def test_removing_the_consumer_too_needs_no_force(pubsub, run_mila) -> None:
    r = run_mila("remove", "-e", "dev", "-s", "sqs-queue,sns-topic", "--no-prompt")
    assert r.exit_code == 0, r.output
    ops = [(c["op"], c["service"]) for c in calls(pubsub.root) if c["op"] == "destroy"]
    assert ops == [("destroy", "sns-topic"), ("destroy", "sqs-queue")]


def test_a_failure_skips_only_its_dependents_destroys_run(project, run_mila, monkeypatch) -> None:
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"])
    for name in ("api", "gone", "old"):
        project.service(name, 'deployer = "fake"\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1,us-east-1").exit_code == 0
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    shutil.rmtree(project.root / "services/gone")
    shutil.rmtree(project.root / "services/old")
    project.write("services/api/FAIL", "")
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 1
    destroyed = {(c["service"], c["region"]) for c in calls(project.root) if c["op"] == "destroy"}
    assert destroyed == {(s, r) for s in ("gone", "old") for r in ("eu-west-1", "us-east-1")}


def test_create_replicate_keeps_services_pinned_to_other_regions(project, run_mila,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config(workspaces=["services/*"])
    project.service("api", 'deployer = "fake"\n')
    project.service("pinned", 'deployer = "fake"\nregions = ["eu-west-1"]\n')
    project.commit_all()
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    assert run_mila("deploy", "-e", "dev", "--no-prompt").exit_code == 0
    before = len(calls(project.root))
    r = run_mila("envs", "create-replicate", "dev", "us-east-1", "--no-prompt")
    assert r.exit_code == 0, r.output
    new = [(c["op"], c["service"], c["region"]) for c in calls(project.root)[before:]]
    assert new == [("deploy", "api", "us-east-1")]
    records = json.loads(run_mila("envs", "describe", "dev", "--json").stdout)["records"]
    assert sorted((x["service"], x["region"]) for x in records) == [
        ("api", "eu-west-1"), ("api", "us-east-1"), ("pinned", "eu-west-1")]


def test_an_output_changed_by_this_run_is_pointed_out(pubsub, run_mila) -> None:
    # only the queue's variables change (not part of the topic's checksum), and its stack is
    # recreated behind mila's back, so this deploy gives it a new Id
    pubsub.write("services/sqs-queue/envs/.env", "RETENTION=4\n")
    stack_file(pubsub.root, "eu-west-1", "shop-sqs-queue-dev").unlink()
    assert {s: a for s, (a, _) in plan(run_mila).items()} == {
        "sqs-queue": "deploy", "sns-topic": "no_changes"}
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 0, r.output
    assert "sns-topic in eu-west-1 reads sqs-queue.Id, which this run changed" in r.output
    assert plan(run_mila)["sns-topic"] == ("deploy", ["output sqs-queue.Id changed"])
