"""Hook implementations of the built-in ``cdk`` plugin: the ``cdk`` deployer.

Detection: a workspace with a ``cdk.json`` is a ``cdk`` service (one service per CDK app,
however many stacks it has). ``cdk synth`` writes the CloudFormation; mila's CloudFormation
engine deploys each stack (see :mod:`.deployer`). Extra ``[service]`` keys, as the
``cloudformation`` deployer's: ``capabilities``, ``tags``, ``termination_protection``.

Checksum: the app's own files (its folder), and, through ``DeployerType.inputs``, the npm lock
files from its folder up to the project root, which pin the CDK's version (``aws-cdk``,
``aws-cdk-lib``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mila import hookimpl
from mila.config import ProjectConfig
from mila.model import Workspace
from mila.protocols import DeployerType
from mila_cdk import NAME, VERSION

if TYPE_CHECKING:
    from .deployer import CdkDeployer

CONFIG_KEYS = frozenset({"capabilities", "tags", "termination_protection"})


def detect(path: Path) -> bool:
    return (path / "cdk.json").is_file()


def create(config: ProjectConfig) -> CdkDeployer:
    from .deployer import CdkDeployer

    return CdkDeployer(NAME, config)


def inputs(ws: Workspace, root: Path) -> list[Path]:
    """The lock files that pin the CDK (``DeployerType.inputs``)."""
    from mila_node import lock_files

    return lock_files(root / ws.path, root)


def iam_statements(config: ProjectConfig) -> list[dict[str, Any]]:
    """The ``cloudformation`` deployer's statements (the stacks are named ``<project>-…``),
    plus listing the region's stacks: ``destroy`` finds the app's stacks by their tags."""
    from mila_cloudformation.policy import iam_statements as stack_statements

    return [*stack_statements(config),
            {"Sid": "MilaCdkFindStacks", "Effect": "Allow", "Resource": "*",
             "Action": ["cloudformation:DescribeStacks"]}]


@hookimpl
def mila_deployers() -> list[DeployerType]:
    return [DeployerType(NAME, create, version=VERSION, detect=detect, priority=6,
                         config_keys=CONFIG_KEYS, inputs=inputs, iam_statements=iam_statements)]
