"""Install this package into the running interpreter's environment once per session, so mila
finds it through its entry point exactly as a user's ``pip install mila-shell-deployer`` would."""

from __future__ import annotations

from pathlib import Path

import pytest

from mila.testing.install import ensure_plugin_installed

PACKAGE = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # before collection: the test modules import the plugin
    ensure_plugin_installed(PACKAGE, "mila-shell-deployer", "shell-deployer")
