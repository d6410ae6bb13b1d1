"""Install this package into the running interpreter's environment once per session, so mila
finds it through its entry point exactly as a user's ``pip install mila-s3-state`` would."""

from __future__ import annotations

from pathlib import Path

import pytest

from mila.testing.install import ensure_plugin_installed

PACKAGE = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # before collection: the test modules import the plugin
    ensure_plugin_installed(PACKAGE, "mila-s3-state", "s3-state")
