"""The shell deployer keeps the Deployer contract (mila.testing.deployer_contract)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mila_shell_deployer.deployer import ShellDeployer

from mila.testing.deployer_contract import DeployerContract


class TestShellDeployer(DeployerContract):
    # The "cloud" is a folder: a stack is a file holding the service's version. The destroy
    # command writes its path from $MILA_ROOT: with the service's folder gone, the command the
    # deploy recorded in DeployResult.data runs in the project's root.
    settings = {
        "deployer": "shell",
        "deploy": 'mkdir -p "$MILA_ROOT/cloud" && cp version.txt "$MILA_ROOT/cloud/${stack_name}" && '
                  'echo "::output Version=$(cat version.txt)"',
        "destroy": 'rm -f "$MILA_ROOT/cloud/${stack_name}"',
    }
    destroys_without_folder = True

    @pytest.fixture
    def deployer(self) -> ShellDeployer:
        return ShellDeployer(self.project_name)

    def service_files(self, version: int) -> dict[str, str]:
        return {"version.txt": f"{version}\n"}

    def exists(self, stack_name: str, region: str, root: Path) -> bool:
        return (root / "cloud" / stack_name).exists()
