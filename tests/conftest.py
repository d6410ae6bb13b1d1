"""Shared fixtures. The project builder and CLI runner are mila's published pytester
(:mod:`mila.testing.project`, fixtures ``mila_project`` and ``run_mila``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mila.testing.project import ProjectFactory

# tests/support holds plugin modules that tests load through MILA_PLUGINS
sys.path.insert(0, str(Path(__file__).parent / "support"))

# Never let botocore look for credentials on the EC2 metadata address (not loopback) in tests.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture
def project(mila_project: ProjectFactory) -> ProjectFactory:
    """mila's own tests call the published ``mila_project`` fixture ``project``; ``run_mila``
    (from the same pytest plugin) runs the CLI on it."""
    return mila_project
