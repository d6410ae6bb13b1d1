"""Benchmark: one saved plan carried out by N `mila apply PLAN --worker` processes.

Makes a project of S independent services (one region) deployed by a deployer that sleeps,
saves the plan, then starts N workers at once, each with ``-c C``, and times until the last
exits. The ideal is ceil(S / (N x C)) x sleep (issue 18's target: within 10% at S = 200,
N = 4, C = 4, 1 s actions). Against the local backend and/or the sandbox (served by this
process on a free port, the server `mila sandbox` runs, so its requests can be counted).

Per run it prints the wall time and ratio, the workers' CPU (and the sandbox's, with the
requests it served), and where the time went: each
worker's start-up (process start to its first deploy), the slot-seconds left idle while it
had work, its exit lag (last deploy end to exit), and for the sandbox the requests served.
Medians of ``--runs`` runs. Before/after: run this file with the other tree's Python
(``/path/to/other/.venv/bin/python bench/bench_workers.py``): its `mila` and its sandbox are
measured, with this folder's deployer.

    python -m compileall -q mila plugins && python bench/bench_workers.py --runs 3
    python bench/bench_workers.py --services 100 --sleep 0.5 --backend local    # quick
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_deploy import make_project  # noqa: E402


def mila(exe: str, *args: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run([exe, "-C", str(cwd), *args], env=env, capture_output=True, text=True,
                   check=True)


def start_workers(exe: str, root: Path, args: argparse.Namespace,
                  env: dict[str, str]) -> tuple[float, float, list[float], float]:
    """Start the workers together; returns (start, wall, exit times, CPU seconds of all)."""
    t0, w0 = time.perf_counter(), time.time()
    workers = [subprocess.Popen([exe, "-C", str(root), "apply", str(root / "plan.json"),
                                 "--worker", "-c", str(args.c)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(args.workers)]
    pending, exits, cpu, codes = {w.pid: w for w in workers}, [], 0.0, []
    while pending:
        pid, status, usage = os.wait4(-1, 0)
        if pid in pending:
            pending.pop(pid).returncode = os.waitstatus_to_exitcode(status)
            exits.append(time.time())
            cpu += usage.ru_utime + usage.ru_stime
            codes.append(os.waitstatus_to_exitcode(status))
    wall = time.perf_counter() - t0
    assert codes == [0] * args.workers, [w.stderr.read() for w in workers if w.stderr]
    return w0, wall, exits, cpu


def timeline(trace: Path, w0: float, exits: list[float], c: int) -> dict[str, float]:
    """Where each worker's time went, from the deployer's trace (medians over workers)."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for line in trace.read_text().splitlines():
        pid, start, end, _ = line.split()
        spans[pid].append((float(start), float(end)))
    last_end = max(e for s in spans.values() for _, e in s)
    startup, idle = [], []
    for s in spans.values():
        first, last = min(a for a, _ in s), max(b for _, b in s)
        startup.append(first - w0)
        idle.append(c * (last - first) - sum(b - a for a, b in s))
    return {"startup": statistics.median(startup), "idle": statistics.median(idle),
            "exit_lag": statistics.median(e - last_end for e in exits),
            "actions": statistics.median(len(s) for s in spans.values())}


def run(backend: str, args: argparse.Namespace, env: dict[str, str],
        server: Any = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root, trace = Path(tmp) / "repo", Path(tmp) / "trace.txt"
        if server is not None:
            server.reset()
        make_project(root, args.services, "local" if backend == "local" else "aws")
        for cmd in (["init"], ["envs", "create", "bench", "--regions", "eu-west-1"],
                    ["deploy", "-e", "bench", "--plan-out", str(root / "plan.json")]):
            mila(args.mila, *cmd, cwd=root, env=env)
        served, own_cpu = (server.app.requests if server else 0), time.process_time()
        w0, wall, exits, cpu = start_workers(args.mila, root, args,
                                             {**env, "MILA_BENCH_TRACE": str(trace)})
        own_cpu = time.process_time() - own_cpu  # the sandbox's threads, when it serves
        ideal = math.ceil(args.services / (args.workers * args.c)) * args.sleep
        out = {"wall": wall, "ratio": wall / ideal, "cpu": cpu,
               **timeline(trace, w0, exits, args.c)}
        if server is not None:
            out["requests"] = server.app.requests - served
            out["server_cpu"] = own_cpu
        return out


def report(backend: str, args: argparse.Namespace, runs: list[dict[str, float]]) -> None:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    ideal = math.ceil(args.services / (args.workers * args.c)) * args.sleep
    walls = ", ".join(f"{r['wall']:.1f}" for r in runs)
    extra = f", {med['requests']:.0f} requests ({med['requests'] / args.services:.1f}/action), " \
        f"sandbox CPU {med['server_cpu']:.1f}s" if "requests" in med else ""
    print(f"[{backend}] {args.services} actions, {args.workers} workers x c={args.c}, sleep "
          f"{args.sleep}s, median of {len(runs)}: wall {med['wall']:.1f}s (ideal {ideal:.1f}s, "
          f"ratio {med['ratio']:.3f}; runs {walls}), "
          f"CPU {med['cpu']:.1f}s{extra}")
    print(f"[{backend}]   per worker (median): start-up to first deploy {med['startup']:.2f}s, "
          f"idle slot-seconds {med['idle']:.1f}, exit lag {med['exit_lag']:.2f}s, "
          f"{med['actions']:.0f} actions; load {os.getloadavg()[0]:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--services", type=int, default=200)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("-c", type=int, default=4)
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--backend", choices=["local", "sandbox", "both"], default="both")
    args = p.parse_args()
    args.mila = str(Path(sys.executable).with_name("mila"))
    env = {**os.environ, "MILA_PLUGINS": "mila_bench_deployer", "MILA_BENCH_SLEEP": str(args.sleep),
           "PYTHONPATH": str(BENCH)}
    if args.backend in ("local", "both"):
        report("local", args, [run("local", args, env) for _ in range(args.runs)])
    if args.backend in ("sandbox", "both"):
        from mila_sandbox.server import SandboxServer

        server = SandboxServer("127.0.0.1", 0).start()
        try:
            sandbox_env = {**env, "AWS_ENDPOINT_URL": server.endpoint_url,
                           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "eu-west-1", "MILA_SANDBOX": "1",
                           "AWS_EC2_METADATA_DISABLED": "true"}
            report("sandbox", args, [run("sandbox", args, sandbox_env, server)
                                     for _ in range(args.runs)])
        finally:
            server.stop()


if __name__ == "__main__":
    main()
