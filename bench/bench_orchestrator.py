"""Benchmark: the orchestrator's scheduling cost and its distance from the ideal schedule.

Two figures per size, for ``mila.orchestrator.run_tasks`` and, side by side in the same run,
for any other revision's orchestrator (``--vs REV`` loads ``mila/orchestrator.py`` from git):

* **scheduler cost per task**: tasks that do nothing, ``c`` workers; wall time / tasks. Flat
  from small to large plans means the scheduler is O(1) (amortised) per task.
* **ratio to ideal**: tasks that sleep ``--sleep`` seconds, shaped like a deploy plan (services
  in 3 regions, each depending on up to 2 earlier services in its region); the ideal is the
  same greedy list schedule computed with zero overhead. 1.00 is perfect.

    python -m compileall -q mila && python bench/bench_orchestrator.py            # 1,500 / 6,000 / 15,000
    python bench/bench_orchestrator.py --sizes 1500,15000 --vs HEAD~1             # before / after
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_revision(rev: str) -> ModuleType:
    """``mila/orchestrator.py`` as it is at ``rev``, imported under a private name."""
    source = subprocess.run(["git", "show", f"{rev}:mila/orchestrator.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "orchestrator_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("orchestrator_rev", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


def plan_shape(actions: int, seed: int = 7) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """Keys (service, region) and their dependencies, like a deploy plan of actions/3 services."""
    rng = random.Random(seed)
    services = actions // 3
    deps: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for region in ("eu-west-1", "us-east-1", "eu-central-1"):
        for i in range(services):
            earlier = rng.sample(range(i), min(i, rng.choice((0, 0, 1, 2))))
            deps[(f"svc{i:05d}", region)] = tuple((f"svc{j:05d}", region) for j in earlier)
    return deps


def ideal(deps: dict, seconds: float, c: int) -> float:
    """Makespan of the scheduler's own greedy policy (ready tasks by key text) with no overhead."""
    dependents: dict = {k: [] for k in deps}
    waiting = {k: len(v) for k, v in deps.items()}
    for k, v in deps.items():
        for d in v:
            dependents[d].append(k)
    ready = [(str(k), k) for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    clock, busy, done = 0.0, [], 0  # busy: heap of (end time, key)
    while done < len(deps):
        while ready and len(busy) < c:
            key = heapq.heappop(ready)[1]
            heapq.heappush(busy, (clock + seconds, str(key), key))
        clock, _, key = heapq.heappop(busy)
        done += 1
        for d in dependents[key]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, (str(d), d))
    return clock


def measure(module: ModuleType, deps: dict, seconds: float, c: int) -> float:
    def work(_cancel: threading.Event) -> None:
        if seconds:
            time.sleep(seconds)

    tasks = [module.Task(k, work, v) for k, v in deps.items()]
    t0 = time.perf_counter()
    report = module.run_tasks(tasks, c)
    wall = time.perf_counter() - t0
    assert report.ok, "a benchmark task failed"
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1500,6000,15000")
    parser.add_argument("--sleep", type=float, default=0.01, help="seconds per task (ratio run)")
    parser.add_argument("-c", type=int, default=16)
    parser.add_argument("--vs", metavar="REV", help="also measure the orchestrator of this git revision")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown")
    args = parser.parse_args()

    from mila import orchestrator

    contenders = {"current": orchestrator}
    if args.vs:
        contenders[args.vs] = load_revision(args.vs)
    print(f"c = {args.c}, sleep = {args.sleep * 1000:.0f} ms, median of {args.repeat}; "
          f"compile first (PYTHONDONTWRITEBYTECODE=1 here)")
    print(f"{'tasks':>7} {'orchestrator':>14} {'µs/task (no work)':>18} "
          f"{'wall':>8} {'ideal':>8} {'ratio':>7}")
    for size in (int(s) for s in args.sizes.split(",")):
        deps = plan_shape(size)
        best = ideal(deps, args.sleep, args.c)
        for name, module in contenders.items():
            # interleave the contenders' runs so a drifting machine hurts both alike
            cost = sorted(measure(module, deps, 0.0, args.c) for _ in range(args.repeat))[args.repeat // 2]
            wall = sorted(measure(module, deps, args.sleep, args.c)
                          for _ in range(args.repeat))[args.repeat // 2]
            print(f"{len(deps):>7} {name:>14} {cost / len(deps) * 1e6:>18.1f} {wall:>8.2f} "
                  f"{best:>8.2f} {wall / best:>7.3f}")


if __name__ == "__main__":
    main()
