"""A deployer for benchmarks: each action sleeps ``MILA_BENCH_SLEEP`` seconds (default 1)."""

from __future__ import annotations

import os
import time

from mila import hookimpl
from mila.model import Action, DeployResult
from mila.protocols import DeployContext, DeployerType


class SleepyDeployer:
    name = "sleepy"
    version = "1"

    def deploy(self, action: Action, context: DeployContext) -> DeployResult:
        time.sleep(float(os.environ.get("MILA_BENCH_SLEEP", "1")))
        return DeployResult(stack_name=f"{context.project}-{action.service}-{action.environment}",
                            outputs={"Name": action.service})

    def destroy(self, action: Action, context: DeployContext) -> DeployResult:
        return DeployResult(stack_name=action.stack_name)


@hookimpl
def mila_deployers() -> list[DeployerType]:
    return [DeployerType("sleepy", create=lambda config: SleepyDeployer(), version="1")]
