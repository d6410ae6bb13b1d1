"""Hook implementations of the built-in ``cloudformation`` plugin: the ``sam`` and
``cloudformation`` deployers (one implementation, :class:`~.deployer.StackDeployer`).

Detection: a workspace with a ``template.yaml``/``template.yml``/``template.json`` is a
``cloudformation`` service; ``sam`` (tried first) takes those whose template has
``Transform: AWS::Serverless-2016-10-31``. Extra ``[service]`` keys:

* ``capabilities`` — the CloudFormation capabilities granted (default all of
  ``CAPABILITY_IAM``, ``CAPABILITY_NAMED_IAM``, ``CAPABILITY_AUTO_EXPAND``);
* ``tags`` — a table of stack tags, on top of ``mila:project``/``env``/``service``/``checksum``;
* ``termination_protection`` — ``true`` turns the stack's termination protection on (and
  ``mila remove`` then refuses to delete it), ``false`` turns it off.
"""

from __future__ import annotations

from pathlib import Path

from mila import hookimpl
from mila.config import ProjectConfig
from mila.protocols import DeployerType

from .deployer import VERSION, StackDeployer
from .templates import find_template, is_sam_template

CONFIG_KEYS = frozenset({"capabilities", "tags", "termination_protection"})


def detect_cloudformation(path: Path) -> bool:
    return find_template(path) is not None


def detect_sam(path: Path) -> bool:
    template = find_template(path)
    return template is not None and is_sam_template(template)


def create_cloudformation(config: ProjectConfig) -> StackDeployer:
    return StackDeployer("cloudformation", config)


def create_sam(config: ProjectConfig) -> StackDeployer:
    return StackDeployer("sam", config)


@hookimpl
def mila_deployers() -> list[DeployerType]:
    return [
        DeployerType("sam", create_sam, version=VERSION, detect=detect_sam, priority=10,
                     config_keys=CONFIG_KEYS),
        DeployerType("cloudformation", create_cloudformation, version=VERSION,
                     detect=detect_cloudformation, priority=20, config_keys=CONFIG_KEYS),
    ]
