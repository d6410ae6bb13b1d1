"""The CI recipes of docs/ci-cd.md, run: their `mila` command lines, in pipeline order (two
pushes to a pull request, the merge, the close), against the sandbox, on a `mila new` project."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ci-cd.md"


def yaml_blocks() -> dict[str, dict]:
    """The doc's YAML blocks, by the file name in their first comment line."""
    blocks = {}
    for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        first = block.splitlines()[0]
        if first.startswith("# ."):
            blocks[first[2:].strip()] = yaml.safe_load(block)
    return blocks


def mila_lines(commands: list[str] | str) -> list[str]:
    text = "\n".join(commands) if isinstance(commands, list) else commands
    return [line.strip() for line in text.splitlines() if line.strip().startswith("mila ")]


def github_job(workflow: dict, job: str) -> list[str]:
    return [line for step in workflow["jobs"][job]["steps"] if "run" in step
            for line in mila_lines(step["run"])]


@pytest.fixture
def repo(sandbox, tmp_path):
    from click.testing import CliRunner

    from mila.cli import cli

    root = tmp_path / "app"
    r = CliRunner().invoke(cli, ["new", str(root), "--no-input", "--name", "app"])
    assert r.exit_code == 0, r.output
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=root, check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for setup in ("mila init", "mila envs create prod"):  # done once, by hand, before CI
        run_line(root, setup, env)
    return root, env


def run_line(root: Path, line: str, env: dict[str, str]) -> None:
    r = subprocess.run(["bash", "-ec", line], cwd=root, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


def result(root: Path) -> dict:
    return json.loads((root / "result.json").read_text())


def environments(root: Path, env: dict[str, str]) -> set[str]:
    r = subprocess.run(["mila", "envs", "list", "--json"], cwd=root, env=env,
                       capture_output=True, text=True, check=True)
    return {e["name"] for e in json.loads(r.stdout)}


@pytest.mark.slow
def test_github_actions_recipe(repo) -> None:
    root, base = repo
    blocks = yaml_blocks()
    pr, deploy = blocks[".github/workflows/pull-request.yml"], blocks[".github/workflows/deploy.yml"]
    pr_env = {k: str(v).replace("${{ github.event.number }}", "12") for k, v in pr["env"].items()}
    env = {**base, **pr_env}
    assert github_job(pr, "plan-and-preview"), "no mila command found in the recipe"
    for push in (1, 2):  # the second push meets an existing environment
        for line in github_job(pr, "plan-and-preview"):
            run_line(root, line, env)
        assert "### mila plan for `prod`" in (root / "plan.md").read_text()
        assert result(root)["status"] == ("succeeded" if push == 1 else "nothing_to_do")
    assert "pr-12" in environments(root, env)
    merge_env = {**base, **{k: str(v) for k, v in deploy["env"].items()}}
    for line in github_job(deploy, "deploy"):
        run_line(root, line, merge_env)
    doc = result(root)
    assert doc["command"] == "apply" and doc["environment"] == "prod"
    assert doc["status"] == "succeeded"
    for line in github_job(pr, "cleanup"):
        run_line(root, line, env)
    assert environments(root, env) == {"prod"}


@pytest.mark.slow
def test_gitlab_ci_recipe(repo) -> None:
    root, base = repo
    pipeline = yaml_blocks()[".gitlab-ci.yml"]
    values = {"CI_MERGE_REQUEST_IID": "7", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    variables = {k: re.sub(r"\$(\w+)", lambda m: values[m.group(1)], str(v))
                 for k, v in pipeline["variables"].items() if k != "GIT_DEPTH"}
    env = {**base, **values, **variables}
    for job in ("plan", "preview"):  # (a second push is the GitHub test's)
        for line in mila_lines(pipeline[job]["script"]):
            run_line(root, line, env)
    assert result(root)["status"] == "succeeded"
    assert "mr-7" in environments(root, env)
    for line in mila_lines(pipeline["deploy"]["script"]):
        run_line(root, line, env)
    assert result(root)["status"] == "succeeded" and result(root)["environment"] == "prod"
    for line in mila_lines(pipeline["stop-preview"]["script"]):
        run_line(root, line, env)
    assert environments(root, env) == {"prod"}


def matrix_line(line: str, worker: int) -> str:
    return line.replace("${{ matrix.worker }}", str(worker))


@pytest.mark.slow
def test_github_actions_worker_matrix_recipe(repo, tmp_path) -> None:
    """The "one plan, many runners" workflow: the plan job saves the plan; the matrix's four jobs,
    each in its own checkout of the same commit, run the recipe's line at once on that file; the
    state alone coordinates them: each action is deployed by exactly one job, and every job
    reports the plan's result."""
    root, env = repo
    workflow = yaml_blocks()[".github/workflows/deploy.yml (excerpt)"]
    hello = root / "services" / "hello"
    for i in range(2, 6):  # five services: more actions than any single job takes first
        copy = root / "services" / f"hello{i}"
        shutil.copytree(hello, copy)
        pyproject = copy / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('"hello"', f'"hello{i}"'))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "more services"], cwd=root, check=True)
    for line in github_job(workflow, "plan"):
        run_line(root, line, env)
    plan = json.loads((root / "plan.json").read_text())
    planned = {(a["service"], a["region"]) for a in plan["actions"] if a["action"] != "no_changes"}
    assert len(planned) == 5

    (apply_line,) = github_job(workflow, "apply")
    jobs = []
    for worker in range(1, 5):  # actions/download-artifact: the plan file, in a fresh checkout
        checkout = tmp_path / f"job{worker}"
        subprocess.run(["git", "clone", "-q", str(root), str(checkout)], check=True)
        shutil.copy(root / "plan.json", checkout / "plan.json")
        jobs.append((checkout, subprocess.Popen(
            ["bash", "-ec", matrix_line(apply_line, worker)], cwd=checkout, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    deployed_by: dict[tuple[str, str], list[int]] = {key: [] for key in planned}
    for worker, (checkout, proc) in enumerate(jobs, 1):
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        doc = json.loads((checkout / f"result-{worker}.json").read_text())
        assert doc["status"] == "succeeded", doc
        for action in doc["actions"]:
            if action["status"] == "succeeded":
                deployed_by[(action["service"], action["region"])].append(worker)
    assert all(len(workers) == 1 for workers in deployed_by.values()), deployed_by
    # a new plan after the matrix: nothing left to do
    r = subprocess.run(["mila", "deploy", "-e", "prod", "--only-prompt", "--json"], cwd=root,
                       env=env, capture_output=True, text=True, check=True)
    assert {a["action"] for a in json.loads(r.stdout)["actions"]} == {"no_changes"}
