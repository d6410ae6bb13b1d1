"""The ``s3`` backend through the real ``mila`` console script, found by its entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MILA = shutil.which("mila", path=str(Path(sys.executable).parent)) or "mila"


def mila(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([MILA, "-C", str(project), *args], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"mila {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mila.toml").write_text(
        '[project]\nname = "shop"\ndefault_region = "eu-west-1"\n\n'
        '[state]\nbackend = "s3"\nbucket = "shop-state-s3-example"\n', encoding="utf-8")
    return tmp_path


def test_mila_plugins_lists_the_s3_backend(project: Path) -> None:
    plugins = json.loads(mila(project, "plugins", "--json").stdout)
    (ours,) = [p for p in plugins if p["name"] == "s3-state"]
    assert ours["distribution"] == "mila-s3-state"
    assert ours["module"] == "mila_s3_state.plugin"
    assert ours["registers"] == {"state backend": ["s3"]}
    assert ours["hooks"] == ["mila_state_backends"]


def test_unknown_state_key_is_a_config_error(project: Path) -> None:
    config = project / "mila.toml"
    config.write_text(config.read_text(encoding="utf-8") + 'table = "nope"\n', encoding="utf-8")
    result = mila(project, "envs", "list", check=False)
    assert result.returncode == 2
    assert "table" in result.stderr


def test_init_and_environments_on_the_sandbox(project: Path, sandbox: object) -> None:
    result = mila(project, "envs", "list", check=False)
    assert result.returncode != 0 and "mila init" in result.stderr  # nothing created yet
    first = mila(project, "init")
    assert "shop-state-s3-example" in first.stdout + first.stderr
    mila(project, "init")  # idempotent
    mila(project, "envs", "create", "dev", "--regions", "eu-west-1,us-east-1")
    listed = json.loads(mila(project, "envs", "list", "--json").stdout)
    assert [(e["name"], e["regions"]) for e in listed] == [("dev", ["eu-west-1", "us-east-1"])]
    # the state really is in the bucket, where the module docstring says
    s3 = sandbox.client("s3")  # type: ignore[attr-defined]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="shop-state-s3-example")["Contents"]]
    assert keys == ["envs/dev.json"]
    mila(project, "envs", "destroy", "dev", "--no-prompt")
    assert json.loads(mila(project, "envs", "list", "--json").stdout) == []
