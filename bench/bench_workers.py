"""Benchmark: one saved plan carried out by N `mila apply PLAN --worker` processes.

Makes a project of S independent services (one region) deployed by a deployer that sleeps,
saves the plan, then starts N workers at once, each with ``-c C``, and times until the last
exits. The ideal is ceil(S / (N x C)) x sleep (issue 18's target: within 10% at S = 200,
N = 4, C = 4, 1 s actions). Against the local backend and/or the sandbox (a separate
``mila sandbox --background`` process, as users run it).

    python -m compileall -q mila plugins && python bench/bench_workers.py
    python bench/bench_workers.py --services 100 --sleep 0.5 --backend local    # quick
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_deploy import make_project  # noqa: E402


def mila(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("mila"))
    return subprocess.run([exe, "-C", str(cwd), *args], env=env, capture_output=True, text=True,
                          check=True)


def run(backend: str, args: argparse.Namespace, env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_project(root, args.services, "local" if backend == "local" else "aws")
        mila("init", cwd=root, env=env)
        mila("envs", "create", "bench", "--regions", "eu-west-1", cwd=root, env=env)
        mila("deploy", "-e", "bench", "--plan-out", str(root / "plan.json"), cwd=root, env=env)
        exe = str(Path(sys.executable).with_name("mila"))
        t0 = time.perf_counter()
        workers = [subprocess.Popen([exe, "-C", str(root), "apply", str(root / "plan.json"),
                                     "--worker", "-c", str(args.c)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                   for _ in range(args.workers)]
        codes = [w.wait() for w in workers]
        wall = time.perf_counter() - t0
        assert codes == [0] * args.workers, [w.stderr.read() for w in workers if w.stderr]
        ideal = math.ceil(args.services / (args.workers * args.c)) * args.sleep
        print(f"[{backend}] {args.services} actions, {args.workers} workers x c={args.c}, "
              f"sleep {args.sleep}s: {wall:.1f}s, ideal {ideal:.1f}s, ratio {wall / ideal:.3f} "
              f"(target < 1.10; includes each worker's start-up and plan check)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=200)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("-c", type=int, default=4)
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("--backend", choices=["local", "sandbox", "both"], default="both")
    args = p.parse_args()
    env = {**os.environ, "MILA_PLUGINS": "mila_bench_deployer", "MILA_BENCH_SLEEP": str(args.sleep),
           "PYTHONPATH": str(BENCH)}
    if args.backend in ("local", "both"):
        run("local", args, env)
    if args.backend in ("sandbox", "both"):
        from mila_sandbox.server import free_port

        port = free_port()
        home = Path(tempfile.mkdtemp())
        exe = str(Path(sys.executable).with_name("mila"))
        plain = {k: v for k, v in env.items() if k != "MILA_PLUGINS"}
        subprocess.run([exe, "sandbox", "--background", "--port", str(port)], cwd=home,
                       check=True, capture_output=True, env=plain)
        try:
            run("sandbox", args, {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                                  "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                  "AWS_DEFAULT_REGION": "eu-west-1", "MILA_SANDBOX": "1",
                                  "AWS_EC2_METADATA_DISABLED": "true"})
        finally:
            subprocess.run([exe, "sandbox", "stop"], cwd=home, capture_output=True, env=plain)


if __name__ == "__main__":
    main()
