"""The shell deployer keeps the Deployer contract (mila.testing.deployer_contract)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mila_shell_deployer.deployer import ShellDeployer

from mila.testing.deployer_contract import DeployerContract


class TestShellDeployer(DeployerContract):
    # The "cloud" is a folder: a stack is a file holding the service's version.
    settings = {
        "deployer": "shell",
        "deploy": 'mkdir -p ../../cloud && cp version.txt "../../cloud/${stack_name}" && '
                  'echo "::output Version=$(cat version.txt)"',
        "destroy": 'rm -f "../../cloud/${stack_name}"',
    }
    # The destroy command lives in the service's mila.toml: with the folder gone it is unknown
    # (documented in the deployer's README and module docstring).
    destroys_without_folder = False

    @pytest.fixture
    def deployer(self) -> ShellDeployer:
        return ShellDeployer(self.project_name)

    def service_files(self, version: int) -> dict[str, str]:
        return {"version.txt": f"{version}\n"}

    def exists(self, stack_name: str, region: str, root: Path) -> bool:
        return (root / "cloud" / stack_name).exists()
