"""Hook implementations of the built-in ``cloudformation`` plugin: the ``sam`` and
``cloudformation`` deployers (one implementation, :class:`~.deployer.StackDeployer`).

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

if TYPE_CHECKING:
    from mila.model import Workspace

    from .deployer import StackDeployer

#: goes into every service's checksum: a new version redeploys (kept here, not in deployer.py,
#: so that registering the plugin imports neither the deployer, boto3 nor PyYAML)
VERSION = "2"  # 2: functions are built (dependencies, workspace packages)
CONFIG_KEYS = frozenset({"capabilities", "tags", "termination_protection", "lint_ignore"})
TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def _template(path: Path) -> Path | None:
    return next((path / n for n in TEMPLATE_NAMES if (path / n).is_file()), None)


def detect_cloudformation(path: Path) -> bool:
    return _template(path) is not None


def detect_sam(path: Path) -> bool:
    template = _template(path)
    if template is None:
        return False
    try:
        if SAM_TRANSFORM not in template.read_text(encoding="utf-8"):
            return False  # most templates: decided without parsing YAML
    except (OSError, UnicodeDecodeError):
        return False
    from .templates import is_sam_template

    return is_sam_template(template)


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
