"""Benchmark: plan and deploy N services x R regions with a deployer that sleeps.

Prints the plan time (cold and warm), the orchestrator overhead per action and the ratio of the
total deploy time to the ideal ceil(actions / c) x sleep, against the local backend and/or the
sandbox (aws backend through AWS_ENDPOINT_URL). Targets (issue 6): ratio under 1.05 at c = 8;
a plan of 1,500 rows under 2 s warm.

    python bench/bench_deploy.py                          # 500 x 3, sleep 1 s, c 8: ~3 min/backend
    python bench/bench_deploy.py --services 100 --sleep 0.2 --backend local   # quick
    python bench/bench_deploy.py --plan-sizes 500,5000      # warm plan time only, per row
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

sys.path.insert(0, str(Path(__file__).parent))
REGIONS = ["eu-west-1", "us-east-1", "eu-central-1", "us-west-2", "ap-south-1"]


def make_project(root: Path, services: int, backend: str) -> None:
    (root / "services").mkdir(parents=True)
    (root / "mila.toml").write_text(
        f'[project]\nname = "bench"\ndefault_region = "eu-west-1"\nworkspaces = ["services/*"]\n'
        f'[state]\nbackend = "{backend}"\n')
    for i in range(services):
        d = root / "services" / f"svc{i:04d}"
        d.mkdir()
        (d / "mila.toml").write_text('[service]\ndeployer = "sleepy"\n')
        (d / "handler.py").write_text(f"def handler(event, context):\n    return {i}\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=root, check=True, env=env)


def run(backend: str, args: argparse.Namespace) -> None:
    from datetime import timedelta

    from mila.deploy import RunOptions, execute, prepare
    from mila.project import load_project

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_project(root, args.services, "local" if backend == "local" else "aws")
        project = load_project(root)
        project.state.init()
        project.state.create_environment("bench", REGIONS[:args.regions], "bench")
        t0 = time.perf_counter()
        prepared = prepare(project, "bench")
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepared = prepare(load_project(root), "bench")
        warm = time.perf_counter() - t0
        actions = len(prepared.plan.actions)
        os.environ["MILA_BENCH_SLEEP"] = str(args.sleep)
        t0 = time.perf_counter()
        report = execute(project, prepared, RunOptions(concurrency=args.c,
                                                      lock_timeout=timedelta(seconds=30),
                                                      lock_poll_seconds=0.1))
        total = time.perf_counter() - t0
        assert report.ok, [o.error for o in report.outcomes.values() if o.error][:3]
        ideal = math.ceil(actions / args.c) * args.sleep
        print(f"[{backend}] {args.services} services x {args.regions} regions = {actions} actions, "
              f"c={args.c}, sleep={args.sleep}s")
        print(f"[{backend}]   plan: cold {cold:.2f}s, warm {warm:.2f}s (target warm < 2 s at 1,500 rows)")
        print(f"[{backend}]   deploy: total {total:.1f}s, ideal {ideal:.1f}s, ratio {total / ideal:.3f} "
              f"(target < 1.05 at c=8)")
        print(f"[{backend}]   overhead per action: {(total - ideal) * args.c / actions * 1000:.1f} ms "
              f"(state writes, lock, manifest, history)")


def plan_scaling(sizes: list[int], regions: int) -> None:
    """Warm plan time (wall and CPU) of N services x R regions on the local backend, per size:
    linear growth means a flat cost per row."""
    from mila.deploy import prepare
    from mila.project import load_project

    print(f"plan, local backend, {regions} regions, warm (second prepare on a fresh load), "
          f"median of 3")
    print(f"{'services':>9} {'rows':>7} {'wall':>8} {'cpu':>8} {'cpu µs/row':>11}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "repo"
            make_project(root, n, "local")
            project = load_project(root)
            project.state.init()
            project.state.create_environment("bench", REGIONS[:regions], "bench")
            prepare(project, "bench")  # cold: fills the digest cache
            runs = []
            for _ in range(3):
                w0, c0 = time.perf_counter(), time.process_time()
                prepared = prepare(load_project(root), "bench")
                runs.append((time.perf_counter() - w0, time.process_time() - c0))
            wall, cpu = sorted(runs)[1]
            rows = len(prepared.plan.actions)
            print(f"{n:>9} {rows:>7} {wall:>7.2f}s {cpu:>7.2f}s {cpu / rows * 1e6:>11.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=500)
    p.add_argument("--regions", type=int, default=3, choices=range(1, len(REGIONS) + 1))
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("-c", type=int, default=8)
    p.add_argument("--backend", choices=["local", "sandbox", "both"], default="both")
    p.add_argument("--plan-sizes", metavar="N,N", help="only time warm plans at these service "
                   "counts (e.g. 500,5000: issue 18's linear-growth target)")
    args = p.parse_args()
    os.environ["MILA_PLUGINS"] = "mila_bench_deployer"
    if args.plan_sizes:
        plan_scaling([int(n) for n in args.plan_sizes.split(",")], args.regions)
        return
    if args.backend in ("local", "both"):
        run("local", args)
    if args.backend in ("sandbox", "both"):
        # A separate sandbox process, as users run it (`mila sandbox --background`): in-process,
        # moto and the boto3 clients would share one GIL and halve the measured throughput.
        from mila_sandbox.server import free_port
        port = free_port()
        home = Path(tempfile.mkdtemp())
        mila = str(Path(sys.executable).with_name("mila"))
        clean = {k: v for k, v in os.environ.items() if k != "MILA_PLUGINS"}
        subprocess.run([mila, "sandbox", "--background", "--port", str(port)], cwd=home,
                       check=True, capture_output=True, env=clean)
        try:
            os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                               "AWS_DEFAULT_REGION": "eu-west-1", "MILA_SANDBOX": "1",
                               "AWS_EC2_METADATA_DISABLED": "true"})
            run("sandbox", args)
        finally:
            subprocess.run([mila, "sandbox", "stop"], cwd=home, capture_output=True, env=clean)


if __name__ == "__main__":
    main()
