"""The ``serverless`` deployer: Serverless Framework services, packaged by the framework and
deployed through mila's CloudFormation engine."""

from __future__ import annotations

from pathlib import Path

#: the deployer's name, and its version: it goes into every serverless service's checksum, so a
#: new version redeploys (here, light to import, for the plugin and the deployer alike)
NAME = "serverless"
VERSION = "1"
#: the files that make a folder a Serverless Framework service (the first found is used)
CONFIG_FILES = ("serverless.yml", "serverless.yaml", "serverless.ts", "serverless.js")


def config_file(path: Path) -> Path | None:
    """The service's framework config file in folder ``path``, or ``None``."""
    return next((path / n for n in CONFIG_FILES if (path / n).is_file()), None)
