"""Hook implementations of the built-in ``cloudformation`` plugin: the ``sam`` and
``cloudformation`` deployers (one implementation, :class:`~.deployer.StackDeployer`). This
module only registers them: detection lives in :mod:`.detect`, the version in :mod:`.version`
(both light to import), the deployer is imported when one is created.

Detection: a workspace with a ``template.yaml``/``template.yml``/``template.json`` is a
``cloudformation`` service; ``sam`` (tried first) takes those whose template has
``Transform: AWS::Serverless-2016-10-31``. Extra ``[service]`` keys:

* ``capabilities`` — the CloudFormation capabilities granted (default all of
  ``CAPABILITY_IAM``, ``CAPABILITY_NAMED_IAM``, ``CAPABILITY_AUTO_EXPAND``);
* ``tags`` — a table of stack tags, on top of ``mila:project``/``env``/``service``/``checksum``;
* ``termination_protection`` — ``true`` turns the stack's termination protection on (and
  ``mila remove`` then refuses to delete it), ``false`` turns it off;
* ``lint_ignore`` — cfn-lint rules (ids or prefixes, ``["W2001", "W3"]``) not to report for
  this service at plan time (see :mod:`.lint`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mila import hookimpl
from mila.config import ProjectConfig
from mila.protocols import DeployerType

from .detect import SAM_TRANSFORM, TEMPLATE_NAMES, detect_cloudformation, detect_sam
from .version import VERSION, builder_version, deployer_version

if TYPE_CHECKING:
    from mila.model import Workspace

    from .deployer import StackDeployer

__all__ = ["CONFIG_KEYS", "SAM_TRANSFORM", "TEMPLATE_NAMES", "VERSION", "builder_version",
           "deployer_version", "detect_cloudformation", "detect_sam", "mila_deployers"]

CONFIG_KEYS = frozenset({"capabilities", "tags", "termination_protection", "lint_ignore"})


def create_cloudformation(config: ProjectConfig) -> StackDeployer:
    from .deployer import StackDeployer

    return StackDeployer("cloudformation", config)


def create_sam(config: ProjectConfig) -> StackDeployer:
    from .deployer import StackDeployer

    return StackDeployer("sam", config)


def iam_statements(config: ProjectConfig) -> list[dict[str, Any]]:
    from .policy import iam_statements

    return iam_statements(config)


def packaged_files(ws: Workspace, root: Path) -> list[Path]:
    from .inputs import packaged_files

    return packaged_files(ws, root)


@hookimpl
def mila_deployers() -> list[DeployerType]:
    version = deployer_version()
    return [
        DeployerType("sam", create_sam, version=version, detect=detect_sam, priority=10,
                     config_keys=CONFIG_KEYS, inputs=packaged_files, iam_statements=iam_statements),
        DeployerType("cloudformation", create_cloudformation, version=version,
                     detect=detect_cloudformation, priority=20, config_keys=CONFIG_KEYS,
                     inputs=packaged_files, iam_statements=iam_statements),
    ]
