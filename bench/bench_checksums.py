"""Benchmark of ``mila checksums`` on a synthetic monorepo (not a timed test).

Generates a monorepo (services and shared packages with ``depends_on`` edges, nested source
folders, a root ``uv.lock`` in ``src``) committed into a temporary git repository, then prints:

* the floor, ``git ls-files -s``, and ``python -c pass`` / ``mila --version`` (start-up cost);
* ``mila checksums --json``: cold (no ``.mila/cache``), warm, and with 1% of the files dirty
  (cold and warm), each with its ratio to the floor and the target ``2 x floor + 0.3 s``;
* in-process: the hasher alone and the checksum computation alone;
* cold throughput in MB/s of the ``fs`` hasher (every byte read and hashed; ``.git`` moved aside)
  against a plain read + sha256 of the same files, and the git hasher's effective MB/s;
* peak memory (max RSS of ``mila checksums`` and its git children) on a 100,000-file repository,
  with the git and with the fs hasher.

Run ``python bench/bench_checksums.py`` (about 300 workspaces and 30,000 files, about a minute)
or ``--quick`` (smaller, seconds). See ``bench/README.md`` for figures measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

DEPLOYER = textwrap.dedent('''
    """A deployer that deploys nothing: services need one to be services."""
    from mila import hookimpl
    from mila.protocols import DeployerType

    class Nothing:
        name, version = "bench", "1"
        def deploy(self, action, context): raise NotImplementedError
        def destroy(self, action, context): raise NotImplementedError

    @hookimpl
    def mila_deployers():
        return [DeployerType("bench", create=lambda config: Nothing(), version="1")]
''')

ROOT_TOML = """\
src = ["uv.lock"]
[project]
name = "bench"
default_region = "eu-west-1"
workspaces = ["packages/*", "services/*"]
[state]
backend = "local"
"""

#: `mila checksums --json` minus the CLI: what the checksum path itself costs from cold start
LEAN = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from mila.checksums import workspace_checksums
    from mila.project import load_project
    p = load_project(Path(sys.argv[1]))
    c = workspace_checksums(p)
    print(json.dumps({n: x.checksum for n, x in c.items()}))
""")

#: the fs hasher alone (walk, read, hash, cache write), without start-up or checksums
FS_ALONE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mila_git.fs import FsHasher
    root = Path(sys.argv[1])
    start = time.perf_counter()
    FsHasher(root / ".mila" / "cache").file_digests(root)
    print(time.perf_counter() - start)
""")

GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}


# --------------------------------------------------------------------------- generator


def generate(root: Path, workspaces: int, files: int, file_size: int, fan_in: int,
             seed: int = 1) -> tuple[list[Path], int]:
    """Write the monorepo; returns its source files and their total size in bytes.

    ``workspaces // 10`` (at least 1) are packages, the rest services. Each service depends on
    ``fan_in`` random packages; each package on one earlier package (so edges are transitive).
    Files are spread evenly, 20 per folder, under ``src/``. All mtimes are set a minute back,
    as in a repository whose files were not written the second before the run.
    """
    rng = random.Random(seed)
    root.mkdir(parents=True)
    (root / "mila.toml").write_text(ROOT_TOML)
    (root / "uv.lock").write_text("lock\n")
    (root / ".gitignore").write_text(".mila/\n")
    n_packages = max(1, workspaces // 10)
    packages = [f"p{i:04}" for i in range(n_packages)]
    services = [f"s{i:04}" for i in range(workspaces - n_packages)]
    per_ws = max(1, files // workspaces)
    written: list[Path] = []
    total = 0
    for i, name in enumerate(packages):
        folder = root / "packages" / name
        folder.mkdir(parents=True)
        deps = [packages[rng.randrange(i)]] if i else []
        (folder / "mila.toml").write_text(f"[package]\ndepends_on = {json.dumps(deps)}\n")
    for name in services:
        folder = root / "services" / name
        folder.mkdir(parents=True)
        deps = sorted(rng.sample(packages, min(fan_in, len(packages))))
        (folder / "mila.toml").write_text(
            f'[service]\ndeployer = "bench"\ndepends_on = {json.dumps(deps)}\n')
    for ws in [root / "packages" / p for p in packages] + [root / "services" / s for s in services]:
        for j in range(per_ws):
            sub = ws / "src" / f"m{j // 20:03}"
            if j % 20 == 0:
                sub.mkdir(parents=True)
            path = sub / f"f{j:05}.py"
            data = rng.randbytes(file_size // 2).hex().encode()[:file_size]
            path.write_bytes(data)
            written.append(path)
            total += len(data)
    past = time.time_ns() - 60 * 10**9
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            os.utime(os.path.join(dirpath, n), ns=(past, past))
    return written, total


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def commit(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    # no background `gc --auto`: it would compete with the timings and write into .git later
    git(root, "-c", "gc.auto=0", "-c", "maintenance.auto=false", "commit", "-q", "-m",
        "synthetic monorepo")
    git(root, "status", "--porcelain")  # settle the index's stat data, as any git user's is


# --------------------------------------------------------------------------- measuring


class Timing(float):
    """Wall-clock seconds (the float), plus the CPU seconds (user + sys) of the process tree:
    on a shared machine the CPU time says what the work costs, the wall time what it waited."""

    cpu: float | None = None

    @classmethod
    def of(cls, wall: float, cpu: float | None) -> Timing:
        t = cls(wall)
        t.cpu = cpu
        return t


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing.of(elapsed, cpu)


def median(cmd: list[str], env: dict[str, str], runs: int, cwd: Path | None = None,
           before: Callable[[], None] | None = None) -> Timing:
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(timed(cmd, env, cwd))
    return Timing.of(statistics.median(times), statistics.median(t.cpu or 0.0 for t in times))


def peak_rss_mb(cmd: list[str], env: dict[str, str]) -> float:
    """Max RSS of ``cmd`` and its children, measured from a fresh process."""
    probe = ("import resource, subprocess, sys; "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True,
                         text=True, check=True)
    return int(out.stdout) / 1024


def read_sha256(paths: list[Path]) -> float:
    start = time.perf_counter()
    for p in paths:
        with open(p, "rb") as f:
            hashlib.sha256(f.read()).hexdigest()
    return time.perf_counter() - start


def mila_command() -> list[str]:
    script = Path(sys.executable).parent / "mila"
    return [str(script)] if script.exists() else [shutil.which("mila") or "mila"]


def dirty(files: list[Path], fraction: float, seed: int = 2) -> list[Path]:
    """Edit ``fraction`` of the files (content appended), dated a minute back."""
    rng = random.Random(seed)
    chosen = rng.sample(files, max(1, int(len(files) * fraction)))
    past = time.time_ns() - 60 * 10**9
    for p in chosen:
        with open(p, "ab") as f:
            f.write(b"# edited\n")
        os.utime(p, ns=(past, past))
    return chosen


def line(label: str, seconds: float, floor: float | None = None) -> None:
    cpu = getattr(seconds, "cpu", None)
    text = f"  {label:<40} {seconds * 1000:7.1f} ms"
    text += f"  (cpu {cpu * 1000:6.1f} ms)" if cpu is not None else " " * 19
    if floor:
        target = 2 * floor + 0.3
        text += (f"  {seconds / floor:5.1f}x floor, target {target * 1000:4.0f} ms: "
                 f"{'ok' if seconds <= target else 'MISSED'}")
        floor_cpu = getattr(floor, "cpu", None)
        if cpu is not None and floor_cpu:
            text += f"; in cpu time {'ok' if cpu <= 2 * floor_cpu + 0.3 else 'MISSED'}"
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspaces", type=int, default=300)
    ap.add_argument("--files", type=int, default=30_000, help="files in all (spread evenly)")
    ap.add_argument("--file-size", type=int, default=1024, help="bytes per file")
    ap.add_argument("--fan-in", type=int, default=3, help="packages each service depends on")
    ap.add_argument("--dirty", type=float, default=0.01, help="fraction of files edited")
    ap.add_argument("--runs", type=int, default=5, help="runs per timing (median)")
    ap.add_argument("--memory-files", type=int, default=100_000,
                    help="files of the peak-memory repository (0: skip)")
    ap.add_argument("--quick", action="store_true",
                    help="60 workspaces, 3,000 files, 3 runs, 20,000 files for memory")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    if args.quick:
        args.workspaces, args.files, args.runs = 60, 3_000, 3
        args.memory_files = min(args.memory_files, 20_000)

    tmp = Path(tempfile.mkdtemp(prefix="mila-bench-"))
    (tmp / "plugins").mkdir()
    (tmp / "plugins" / "mila_bench_hash_deployer.py").write_text(DEPLOYER)
    env = {**os.environ, "MILA_PLUGINS": "mila_bench_hash_deployer",
           "PYTHONPATH": os.pathsep.join([str(tmp / "plugins"), os.environ.get("PYTHONPATH", "")])}
    mila = mila_command()
    try:
        run(args, tmp, env, mila)
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path, env: dict[str, str], mila: list[str]) -> None:
    repo = tmp / "repo"
    t0 = time.perf_counter()
    files, total = generate(repo, args.workspaces, args.files, args.file_size, args.fan_in)
    commit(repo)
    print(f"repo: {args.workspaces} workspaces, {len(files)} files, {total / 1e6:.1f} MB, "
          f"fan-in {args.fan_in} (generated and committed in {time.perf_counter() - t0:.1f} s)")
    print(f"python {sys.version.split()[0]}, {git(repo, 'version').strip()}, "
          f"{os.cpu_count()} CPUs; median of {args.runs} runs\n")

    checksums = [*mila, "-C", str(repo), "checksums", "--json"]
    cache = repo / ".mila" / "cache"

    def drop_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    floor = median(["git", "ls-files", "-s", "-z"], env, args.runs, cwd=repo)
    print("start-up and floor")
    line("python -c pass", median([sys.executable, "-c", "pass"], env, args.runs))
    line("mila --version (imports, no project)", median([*mila, "--version"], env, args.runs))
    line("git ls-files -s (floor)", floor)

    print("\nmila checksums --json, clean tree (git hasher)")
    line("cold (no .mila/cache)", median(checksums, env, args.runs, before=drop_cache), floor)
    line("warm", median(checksums, env, args.runs), floor)

    edited = dirty(files, args.dirty)
    print(f"\nmila checksums --json, {len(edited)} files dirty ({args.dirty:.0%})")
    line("cold (no .mila/cache)", median(checksums, env, args.runs, before=drop_cache), floor)
    timed(checksums, env)  # fill the cache
    line("warm", median(checksums, env, args.runs), floor)
    git(repo, "checkout", "-q", "--", ".")

    lean = [sys.executable, "-c", LEAN, str(repo)]
    print("\nthe same work without the CLI's imports (mila.project + mila.checksums only)")
    line("python -c <load project, checksums, JSON>", median(lean, env, args.runs), floor)

    in_process(repo, env)

    print("\ncold throughput (page cache warm, digest cache empty)")
    git_cold = median(checksums, env, args.runs, before=drop_cache)
    baseline = read_sha256(files)
    (repo / ".git").rename(tmp / "git-aside")
    try:
        fs_cold = median(checksums, env, max(1, args.runs // 2), before=drop_cache)
        drop_cache()
        fs_alone = float(subprocess.run(
            [sys.executable, "-c", FS_ALONE, str(repo)], env=env, capture_output=True, text=True,
            check=True).stdout)
        timed(checksums, env)
        fs_warm = median(checksums, env, args.runs)
    finally:
        (tmp / "git-aside").rename(repo / ".git")
    mb = total / 1e6
    print(f"  {'plain read + sha256 of the files (in-process)':<44} {baseline * 1000:8.1f} ms "
          f"{mb / baseline:8.1f} MB/s")
    print(f"  {'mila checksums, fs hasher, cold':<44} {fs_cold * 1000:8.1f} ms "
          f"{mb / fs_cold:8.1f} MB/s   {baseline / fs_cold:5.2f}x the plain read")
    print(f"  {'fs hasher alone, in-process, cold':<44} {fs_alone * 1000:8.1f} ms "
          f"{mb / fs_alone:8.1f} MB/s   {baseline / fs_alone:5.2f}x the plain read")
    print(f"  {'mila checksums, fs hasher, warm':<44} {fs_warm * 1000:8.1f} ms")
    print(f"  {'mila checksums, git hasher, cold':<44} {git_cold * 1000:8.1f} ms "
          f"{mb / git_cold:8.1f} MB/s   (effective: clean files are not read)")

    if args.memory_files:
        memory(args, tmp, env, mila)


def in_process(repo: Path, env: dict[str, str]) -> None:
    """The hasher and the checksum computation timed inside one interpreter (no start-up)."""
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from mila.checksums import compute_checksums
        from mila.project import load_project
        t = time.perf_counter(); p = load_project(Path({str(repo)!r})); g = p.graph
        t1 = time.perf_counter(); d = p.hasher.file_digests(p.root)
        t2 = time.perf_counter(); compute_checksums(g, d, p.config, p.deployer_version)
        t3 = time.perf_counter()
        print(t1 - t, t2 - t1, t3 - t2)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    load, hashing, folding = (float(x) for x in out)
    print("\nin-process, clean tree")
    line("load project (config, plugins, graph)", load)
    line("hasher.file_digests (git hasher)", hashing)
    line("compute_checksums (all workspaces)", folding)


def memory(args: argparse.Namespace, tmp: Path, env: dict[str, str], mila: list[str]) -> None:
    big = tmp / "big"
    workspaces = max(args.workspaces, args.memory_files // 100)
    t0 = time.perf_counter()
    _files, total = generate(big, workspaces, args.memory_files, 256, args.fan_in)
    commit(big)
    print(f"\npeak memory: {workspaces} workspaces, {args.memory_files} files, "
          f"{total / 1e6:.1f} MB (generated in {time.perf_counter() - t0:.1f} s)")
    cmd = [*mila, "-C", str(big), "checksums", "--json"]
    start = time.perf_counter()
    rss = peak_rss_mb(cmd, env)
    print(f"  {'git hasher':<44} {rss:8.1f} MB  ({time.perf_counter() - start:.2f} s, "
          f"target 200 MB {'ok' if rss < 200 else 'MISSED'})")
    (big / ".git").rename(tmp / "big-git-aside")
    start = time.perf_counter()
    rss = peak_rss_mb(cmd, env)
    print(f"  {'fs hasher, cold':<44} {rss:8.1f} MB  ({time.perf_counter() - start:.2f} s, "
          f"target 200 MB {'ok' if rss < 200 else 'MISSED'})")
    rss = peak_rss_mb(cmd, env)
    print(f"  {'fs hasher, warm':<44} {rss:8.1f} MB")


if __name__ == "__main__":
    main()
