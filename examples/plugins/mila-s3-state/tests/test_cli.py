"""The ``s3`` backend through mila's CLI, found by its entry point.

The project is built and run with mila's pytester (``mila_project``, ``run_mila`` from mila's
pytest plugin: the CLI in-process, the plugin found by its entry point); one test runs the
installed ``mila`` console script, as a user does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mila.testing.project import MilaResult, ProjectFactory

MILA = shutil.which("mila", path=str(Path(sys.executable).parent)) or "mila"
Mila = Callable[..., MilaResult]


@pytest.fixture
def mila(run_mila: Mila) -> Mila:
    """``run_mila``, failing the test on a non-zero exit unless ``check=False``."""

    def run(*args: str, check: bool = True) -> MilaResult:
        result = run_mila(*args)
        if check and result.exit_code != 0:
            raise AssertionError(f"mila {' '.join(args)} exited {result.exit_code}:\n"
                                 f"{result.output}")
        return result

    return run


@pytest.fixture
def project(mila_project: ProjectFactory) -> Path:
    mila_project.root_config(name="shop", backend="s3",
                             extra='bucket = "shop-state-s3-example"\n')
    return mila_project.root


def test_mila_plugins_lists_the_s3_backend(project: Path) -> None:
    """Through the installed ``mila`` console script."""
    result = subprocess.run([MILA, "-C", str(project), "plugins", "--json"], capture_output=True,
                            text=True, env=os.environ.copy(), timeout=120)
    assert result.returncode == 0, result.stderr
    (ours,) = [p for p in json.loads(result.stdout) if p["name"] == "s3-state"]
    assert ours["distribution"] == "mila-s3-state"
    assert ours["module"] == "mila_s3_state.plugin"
    assert ours["registers"] == {"state backend": ["s3"]}
    assert ours["hooks"] == ["mila_state_backends"]


def test_unknown_state_key_is_a_config_error(project: Path, mila: Mila) -> None:
    config = project / "mila.toml"
    config.write_text(config.read_text(encoding="utf-8") + 'table = "nope"\n', encoding="utf-8")
    result = mila("envs", "list", check=False)
    assert result.exit_code == 2
    assert "table" in result.stderr


def test_init_and_environments_on_the_sandbox(project: Path, mila: Mila, sandbox: object) -> None:
    result = mila("envs", "list", check=False)
    assert result.exit_code != 0 and "mila init" in result.stderr  # nothing created yet
    first = mila("init")
    assert "shop-state-s3-example" in first.output
    mila("init")  # idempotent
    mila("envs", "create", "dev", "--regions", "eu-west-1,us-east-1")
    listed = mila("envs", "list", "--json").json
    assert [(e["name"], e["regions"]) for e in listed] == [("dev", ["eu-west-1", "us-east-1"])]
    # the state really is in the bucket, where the module docstring says
    s3 = sandbox.client("s3")  # type: ignore[attr-defined]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="shop-state-s3-example")["Contents"]]
    assert keys == ["envs/dev.json"]
    mila("envs", "destroy", "dev", "--no-prompt")
    assert mila("envs", "list", "--json").json == []
