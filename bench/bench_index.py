"""Micro-benchmark of ``mila_git.index`` (not a timed test): the cost of reading git's index.

Builds an index of N entries with ``git update-index --index-info`` (no files needed) in
versions 2 and 4, then prints, as medians of in-process runs:

* ``read_index`` asking for every entry (a first run: every path decoded);
* ``read_index`` asking for none (an index that changed since the last run: the walk alone);
* the warm path: ``RacyCheck.suspects`` with an unchanged index file (a ``stat`` and the state).

Run ``python bench/bench_index.py`` (30,000 and 200,000 entries, about half a minute) or
``--sizes 3000``. See ``bench/README.md`` for figures measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from mila_git import blobs
from mila_git.index import RacyCheck, read_index


def build(root: Path, entries: int, version: int) -> bytes:
    """An index of ``entries`` paths spread 20 to a folder, in ``version``."""
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    blob = blobs.blob_id(b"x\n")
    info = "".join(f"100644 {blob}\tservices/s{i // 100:04d}/src/d{i // 20 % 5}/file{i}.py\n"
                   for i in range(entries))
    subprocess.run(["git", "update-index", "--add", "--index-info"], cwd=root, check=True,
                   input=info.encode())
    subprocess.run(["git", "update-index", "--index-version", str(version)], cwd=root, check=True)
    return (root / ".git" / "index").read_bytes()


def warm_check(root: Path, tracked: dict[str, str]) -> None:
    RacyCheck(root / "cache").suspects(root, root / ".git/index", 20, "", True, tracked)


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        action()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[30_000, 200_000])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mila-bench-index-"))
    try:
        for size in args.sizes:
            for version in (2, 4):
                root = tmp / f"{size}-v{version}"
                data = build(root, size, version)
                every = median_ms(partial(read_index, data, 20, "", 0), args.runs)
                walk = median_ms(partial(read_index, data, 20, "", 2**32), args.runs)
                print(f"{size:>8} entries, v{version}, {len(data) / 1e6:5.1f} MB: "
                      f"every entry {every:6.1f} ms, the walk alone {walk:6.1f} ms")
            root = tmp / f"{size}-v2"
            cache = root / "cache"
            first = RacyCheck(cache)
            first.suspects(root, root / ".git/index", 20, "", True, {})
            tracked = {path: blobs.blob_id(b"x\n") for path in first.candidates}
            first.settle(root, tracked, {})  # every entry verified: nothing pending

            warm = partial(warm_check, root, tracked)
            print(f"{size:>8} entries, warm (index unchanged, state read): "
                  f"{median_ms(warm, args.runs * 3):6.3f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    main()
