"""Shared set-up of the framework deployer tests: a project made of services copied from
``examples/frameworks``, with that example's ``node_modules`` (installed by ``scripts/test``
with ``npm ci``) linked in at its root, as a monorepo's hoisted ``node_modules``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "frameworks"
NODE_MODULES = EXAMPLE / "node_modules"


def require_node_tools(*tools: str) -> None:
    """Skip when Node.js or the example's npm packages are missing (``scripts/test`` installs
    them; ``npm ci --prefix examples/frameworks`` does by hand)."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    missing = [t for t in tools if not (NODE_MODULES / ".bin" / t).exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run `npm ci --prefix {EXAMPLE}` "
                    "(scripts/test does)")


def copy_services(project: Any, *names: str) -> None:
    """The example's root files and the named services, in ``project``'s root."""
    root: Path = project.root
    root.mkdir(parents=True, exist_ok=True)
    for name in ("mila.toml", ".gitignore", "package.json", "package-lock.json"):
        shutil.copy(EXAMPLE / name, root / name)
    shutil.copytree(EXAMPLE / "envs", root / "envs")
    for name in names:
        shutil.copytree(EXAMPLE / "services" / name, root / "services" / name,
                        ignore=shutil.ignore_patterns("node_modules", "cdk.out", ".serverless"))
    (root / "node_modules").symlink_to(NODE_MODULES)


def live_stacks(client: Any) -> list[str]:
    return sorted(s["StackName"] for s in client.list_stacks()["StackSummaries"]
                  if s["StackStatus"] != "DELETE_COMPLETE")
