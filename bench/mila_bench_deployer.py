"""A deployer for benchmarks: each action sleeps ``MILA_BENCH_SLEEP`` seconds (default 1).

With ``MILA_BENCH_TRACE=FILE`` each deploy appends ``pid start end service`` (wall-clock
seconds) to FILE, so a benchmark can tell when each worker really deployed.
"""

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
        start = time.time()
        time.sleep(float(os.environ.get("MILA_BENCH_SLEEP", "1")))
        trace = os.environ.get("MILA_BENCH_TRACE")
        if trace:
            with open(trace, "a") as f:  # one short append per line: atomic enough here
                f.write(f"{os.getpid()} {start:.4f} {time.time():.4f} {action.service}\n")
        return DeployResult(stack_name=f"{context.project}-{action.service}-{action.environment}",
                            outputs={"Name": action.service})

    def destroy(self, action: Action, context: DeployContext) -> DeployResult:
        return DeployResult(stack_name=action.stack_name)


@hookimpl
def mila_deployers() -> list[DeployerType]:
    return [DeployerType("sleepy", create=lambda config: SleepyDeployer(), version="1")]
