"""Hook implementations of the built-in ``serverless`` plugin: the ``serverless`` deployer.

Detection: a workspace with a ``serverless.yml``/``serverless.yaml``/``serverless.ts``/
``serverless.js`` is a ``serverless`` service (tried before ``sam`` and ``cloudformation``).
The framework (``osls``, the open-source Serverless Framework v3, or ``serverless@3``) only
*packages* the service; mila's CloudFormation engine deploys the result (see
:mod:`.deployer`). Extra ``[service]`` keys, besides the ``cloudformation`` deployer's
(``capabilities``, ``tags``, ``termination_protection``):

* ``stack_name`` — the stack's name (default: the framework's own, ``<service>-<stage>``, or
  ``provider.stackName``);
* ``stage`` — the framework's ``--stage`` (default: the mila environment's name).

Checksum: the service's own files (``serverless.yml`` and everything the framework packages
from its folder) are its workspace files; ``DeployerType.inputs`` adds the npm lock files from
the service's folder up to the project root, which pin the framework's version, its plugins'
and the packaged ``node_modules``, and the files ``package.patterns`` bring in from outside the
folder (``../shared/**``; read from a YAML ``serverless.yml`` only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mila import hookimpl
from mila.config import ProjectConfig
from mila.model import Workspace
from mila.protocols import DeployerType
from mila_serverless import CONFIG_FILES, NAME, VERSION, config_file

if TYPE_CHECKING:
    from .deployer import ServerlessDeployer

__all__ = ["CONFIG_FILES", "CONFIG_KEYS", "NAME", "VERSION", "config_file", "detect"]

CONFIG_KEYS = frozenset({"capabilities", "tags", "termination_protection", "stack_name", "stage"})


def detect(path: Path) -> bool:
    return config_file(path) is not None


def create(config: ProjectConfig) -> ServerlessDeployer:
    from .deployer import ServerlessDeployer

    return ServerlessDeployer(NAME, config)


def iam_statements(config: ProjectConfig) -> list[dict[str, Any]]:
    """The ``cloudformation`` deployer's statements, plus change sets on any stack: the
    framework names its stacks ``<service>-<stage>``, not after the mila project."""
    from mila_cloudformation.policy import iam_statements as stack_statements

    statements = stack_statements(config)
    stacks = next(s for s in statements if s["Sid"] == "MilaStacks")
    return [*statements, {**stacks, "Sid": "MilaServerlessStacks",
                          "Resource": ["arn:aws:cloudformation:*:*:stack/*/*",
                                       "arn:aws:cloudformation:*:*:changeSet/*/*"]}]


@hookimpl
def mila_deployers() -> list[DeployerType]:
    return [DeployerType(NAME, create, version=VERSION, detect=detect, priority=5,
                         config_keys=CONFIG_KEYS, inputs=inputs, iam_statements=iam_statements)]


def inputs(ws: Workspace, root: Path) -> list[Path]:
    """``DeployerType.inputs``: the lock files that pin the framework and its plugins, and the
    files that ``package.patterns`` such as ``../shared/**`` bring in from outside the
    service's folder (exclusions are not applied: a file too many only redeploys)."""
    import glob

    from mila_node import lock_files

    from .config import outside_patterns

    folder = root / ws.path
    found = lock_files(folder, root)
    for pattern in outside_patterns(config_file(folder)):
        for match in sorted(glob.glob(pattern, root_dir=folder, recursive=True)):
            if (folder / match).is_file():
                found.append(folder / match)
    return found
