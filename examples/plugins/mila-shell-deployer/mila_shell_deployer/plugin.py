"""Hook implementations: registers the ``shell`` deployer.

A workspace uses it by naming it (it detects nothing on its own)::

    [service]
    deployer = "shell"
    deploy = "npx serverless deploy --stage ${env} --region ${region}"
    destroy = "npx serverless remove --stage ${env} --region ${region}"
    depends_on = ["shared"]
"""

from __future__ import annotations

from mila import hookimpl
from mila.config import ProjectConfig
from mila.protocols import DeployerType
from mila_shell_deployer import __version__
from mila_shell_deployer.deployer import CONFIG_KEYS, ShellDeployer


def create_shell(config: ProjectConfig) -> ShellDeployer:
    return ShellDeployer(config.name)


@hookimpl
def mila_deployers() -> list[DeployerType]:
    # No `detect`: a folder is never a shell service by accident, only by `deployer = "shell"`.
    return [DeployerType("shell", create_shell, version=__version__, config_keys=CONFIG_KEYS)]
