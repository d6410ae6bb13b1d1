"""The version of the ``sam`` and ``cloudformation`` deployers, which goes into every
service's checksum: a new version redeploys.

Light to import (``plugin.py`` registers the version at start-up without importing the
deployer, boto3 or PyYAML); the deployer and the build read it from here too.
"""

from __future__ import annotations

from pathlib import Path

#: bump to redeploy every service of these deployers
VERSION = "2"  # 2: functions are built (dependencies, workspace packages)


def builder_version() -> str:
    """aws-lambda-builders' version, read from its source without importing it (start-up
    stays fast), or ``none`` when it is not installed."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("aws_lambda_builders")
    if spec is None or spec.origin is None:
        return "none"
    try:
        found = re.search(r'__version__\s*=\s*["\']([^"\']+)', Path(spec.origin).read_text())
    except OSError:
        return "none"
    return found.group(1) if found else "unknown"


def deployer_version() -> str:
    """The deployers' version: the builder's is part of it, so a new builder redeploys."""
    return f"{VERSION}+aws-lambda-builders-{builder_version()}"
