"""Install this package into the running interpreter's environment once per session, so mila
finds it through its entry point exactly as a user's ``pip install mila-shell-deployer`` would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]


def _installed() -> bool:
    try:
        from importlib.metadata import PackageNotFoundError, distribution
    except ImportError:  # pragma: no cover
        return False
    try:
        dist = distribution("mila-shell-deployer")
    except PackageNotFoundError:
        return False
    return any(ep.group == "mila" and ep.name == "shell-deployer" for ep in dist.entry_points)


@pytest.fixture(scope="session", autouse=True)
def installed_plugin() -> None:
    """``pip install -e`` this package unless it already is (scripts/test installs it)."""
    if not _installed():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "-e", str(PACKAGE)], check=True)
        import importlib

        importlib.invalidate_caches()
