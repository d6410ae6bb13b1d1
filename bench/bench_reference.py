"""Warm ``mila checksums`` against a minimal Python reference, and Turborepo (not a timed test).

The reference (``REFERENCE`` below, run as its own ``python -c`` process) does the least a tool
must do for the same answer on a git work tree: one ``git ls-files -s -z`` and one
``git status --porcelain=v2 -z`` started together; the bytes of dirty and untracked files hashed
as git blob ids; the workspaces found by globbing the root ``mila.toml``'s ``workspaces`` and
parsing each ``mila.toml`` (``depends_on``); the sorted ``(path, id)`` pairs under each folder,
plus the root ``src`` files, folded into a sha256; and each workspace's checksum folded with its
dependencies' in topological order. It prints ``{name: checksum}`` as JSON. What it leaves out,
and mila does not: symlinks, submodules, ``.gitattributes`` conversions, per-workspace ``src``
patterns, a digest cache, deployer versions, configuration in the checksum, plugins.

For each size (the repository is generated once per size by ``bench_checksums.generate``), both
are run alternately (side by side, so the machine's load hits both alike), warm (after one
untimed run each): medians of wall and CPU time (user + sys of the process tree) and the ratio
mila / reference. With ``--turbo PATH`` (a ``turbo`` binary, e.g. from
``npm install turbo`` in a temporary folder) a copy of the repository is made a Turborepo
workspace (root ``package.json`` with ``workspaces``, ``turbo.json`` with one ``build`` task, a
``package.json`` per workspace with its dependencies) and ``turbo run build --dry=json`` is timed
the same way, with telemetry off and no remote cache. With ``--baseline DIR`` (``mila/`` and
``plugins/`` of another revision, e.g. from ``git archive``) the same mila command is timed with
its modules taken from there: before and after side by side in one run.

    python -m compileall -q mila plugins     # PYTHONDONTWRITEBYTECODE=1 here: compile first
    python bench/bench_reference.py --sizes 30000,100000,200000 --turbo /tmp/t/node_modules/.bin/turbo
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).parent))
from bench_checksums import DEPLOYER, Timing, commit, generate, mila_command, timed

REFERENCE = textwrap.dedent(r'''
    import glob, hashlib, json, os, subprocess, sys, tomllib
    from bisect import bisect_left
    root = sys.argv[1]
    opts = dict(cwd=root, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    index = subprocess.Popen(["git", "ls-files", "-s", "-z"], **opts)
    status = subprocess.Popen(["git", "status", "--porcelain=v2", "-z", "-unormal",
                               "--no-renames"], **opts)
    with open(os.path.join(root, "mila.toml"), "rb") as f:
        top = tomllib.load(f)
    deps = {}
    for pattern in top["project"]["workspaces"]:
        for folder in sorted(glob.glob(pattern, root_dir=root)):
            try:
                with open(os.path.join(root, folder, "mila.toml"), "rb") as f:
                    doc = tomllib.load(f)
            except FileNotFoundError:
                continue
            kind = doc.get("service") or doc.get("package") or {}
            deps[folder] = [d for d in kind.get("depends_on", [])]
    ids = {}
    for entry in index.communicate()[0].split(b"\0")[:-1]:
        meta, _, path = entry.partition(b"\t")
        ids[path.decode()] = meta[7:47].decode()
    dirty, untracked_dirs = [], []
    for entry in status.communicate()[0].split(b"\0")[:-1]:
        if entry[:2] == b"1 ":
            dirty.append(entry.split(b" ", 8)[8].decode())
        elif entry[:2] == b"? ":
            (untracked_dirs if entry.endswith(b"/") else dirty).append(entry[2:].decode())
    if untracked_dirs:
        out = subprocess.run(["git", "ls-files", "-o", "--exclude-standard", "-z", "--",
                              *untracked_dirs], cwd=root, stdout=subprocess.PIPE).stdout
        dirty += out.decode().split("\0")[:-1]
    for path in dirty:
        try:
            with open(os.path.join(root, path), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            ids.pop(path, None)
            continue
        ids[path] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    paths = sorted(ids)
    root_part = "".join(f"{p}\0{ids[p]}\n" for p in top.get("src", []) if p in ids)
    by_name = {f.rsplit("/", 1)[-1]: f for f in deps}
    out, todo = {}, list(deps)
    while todo:  # topological: a workspace after its dependencies
        later = []
        for folder in todo:
            names = deps[folder]
            if any(by_name[d] not in out for d in names):
                later.append(folder)
                continue
            h = hashlib.sha256(root_part.encode())
            prefix = folder + "/"
            i = bisect_left(paths, prefix)
            while i < len(paths) and paths[i].startswith(prefix):
                h.update(f"{paths[i]}\0{ids[paths[i]]}\n".encode())
                i += 1
            for d in sorted(names):
                h.update(out[by_name[d]].encode())
            out[folder] = h.hexdigest()
        if len(later) == len(todo):
            sys.exit("dependency cycle")
        todo = later
    print(json.dumps({f.rsplit("/", 1)[-1]: c for f, c in out.items()}))
''')


def side_by_side(commands: dict[str, list[str]], env: dict[str, str], runs: int,
                 cwd: dict[str, Path],
                 envs: dict[str, dict[str, str]] | None = None) -> dict[str, Timing]:
    """Each command once untimed (warm), then ``runs`` rounds of all of them in turn
    (``envs``: a command's own environment instead of ``env``)."""
    envs = envs or {}
    for label, cmd in commands.items():
        timed(cmd, envs.get(label, env), cwd.get(label))
    samples: dict[str, list[Timing]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, cmd in commands.items():
            samples[label].append(timed(cmd, envs.get(label, env), cwd.get(label)))
    return {label: Timing.of(statistics.median(s), statistics.median(t.cpu or 0.0 for t in s))
            for label, s in samples.items()}


def turbo_copy(repo: Path, dest: Path) -> None:
    """A copy of ``repo`` made a valid Turborepo workspace (committed, so both hash a clean tree)."""
    shutil.copytree(repo, dest, symlinks=True)
    shutil.rmtree(dest / ".mila", ignore_errors=True)
    npm = subprocess.run(["npm", "--version"], capture_output=True, text=True).stdout.strip()
    (dest / "package.json").write_text(json.dumps({
        "name": "bench", "private": True, "packageManager": f"npm@{npm or '10.0.0'}",
        "workspaces": ["packages/*", "services/*"]}, indent=2))
    (dest / "turbo.json").write_text(json.dumps({
        "$schema": "https://turbo.build/schema.json",
        "tasks": {"build": {"dependsOn": ["^build"], "inputs": ["src/**"], "outputs": []}}}))
    (dest / "package-lock.json").write_text(json.dumps({
        "name": "bench", "lockfileVersion": 3, "requires": True, "packages": {}}))
    for kind in ("packages", "services"):
        for folder in sorted((dest / kind).iterdir()):
            doc = tomllib.loads((folder / "mila.toml").read_text())
            deps = (doc.get("service") or doc.get("package") or {}).get("depends_on", [])
            (folder / "package.json").write_text(json.dumps({
                "name": folder.name, "version": "1.0.0",
                "scripts": {"build": "true"},
                "dependencies": {d: "1.0.0" for d in deps}}))
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "-c", "gc.auto=0", "-c", "user.name=b", "-c", "user.email=b@e.invalid",
                    "commit", "-q", "-m", "turbo"], cwd=dest, check=True)
    subprocess.run(["git", "status", "--porcelain"], cwd=dest, check=True, capture_output=True)


def same_answer(mila: list[str], repo: Path, env: dict[str, str]) -> None:
    """The reference is only a reference if it reads the same inputs: check it sees every
    workspace mila sees (the checksums differ by design: mila's fold also covers config)."""
    ours = json.loads(subprocess.run([sys.executable, "-c", REFERENCE, str(repo)], env=env,
                                     capture_output=True, check=True).stdout)
    theirs = json.loads(subprocess.run([*mila, "-C", str(repo), "checksums", "--json"], env=env,
                                       capture_output=True, check=True).stdout)
    names = {n for group in theirs.values() for n in group}  # {"packages": …, "services": …}
    if names != set(ours):
        raise SystemExit(f"reference and mila disagree on the workspaces: "
                         f"{sorted(set(ours) ^ names)[:5]}")


def row(label: str, t: Timing, base: Timing | None) -> str:
    ratio = f"{t / base:5.2f}x / {(t.cpu or 0) / (base.cpu or 1):5.2f}x" if base else ""
    return f"  {label:<34} {t * 1000:8.0f} ms  cpu {(t.cpu or 0) * 1000:7.0f} ms  {ratio}"


def one_size(files: int, args: argparse.Namespace, tmp: Path, env: dict[str, str],
             mila: list[str]) -> None:
    repo = tmp / f"repo{files}"
    workspaces = max(1, files // args.files_per_workspace)
    t0 = time.perf_counter()
    generate(repo, workspaces, files, args.file_size, 3)
    commit(repo)
    print(f"\n{files:,} files, {workspaces} workspaces, {args.file_size} B each "
          f"(generated and committed in {time.perf_counter() - t0:.0f} s); "
          f"median of {args.runs}, warm; ratios wall / cpu")
    same_answer(mila, repo, env)
    commands = {"reference (python -c)": [sys.executable, "-c", REFERENCE, str(repo)],
                "mila checksums --json": [*mila, "-C", str(repo), "checksums", "--json"],
                "git status (alone)": ["git", "status", "--porcelain=v2", "-z", "-unormal"]}
    cwd = {"git status (alone)": repo}
    envs = {}
    if args.baseline:  # the same mila command, its modules taken from another checkout
        label = f"mila, baseline {args.baseline.name}"
        commands[label] = commands["mila checksums --json"]
        envs[label] = {**env, "PYTHONPATH": os.pathsep.join(
            [str(args.baseline), str(args.baseline / "plugins"), env["PYTHONPATH"]])}
    if args.turbo and files <= args.turbo_max:
        copy = tmp / f"turbo{files}"
        turbo_copy(repo, copy)
        commands["turbo run build --dry=json"] = [args.turbo, "run", "build", "--dry=json"]
        cwd["turbo run build --dry=json"] = copy
    result = side_by_side(commands, env, args.runs, cwd, envs)
    base = result["reference (python -c)"]
    for label, t in result.items():
        print(row(label, t, None if t is base else base), flush=True)
    print(f"  (load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} after this size)")
    shutil.rmtree(repo, ignore_errors=True)
    shutil.rmtree(tmp / f"turbo{files}", ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="30000,100000,200000", help="file counts, comma-separated")
    ap.add_argument("--files-per-workspace", type=int, default=100)
    ap.add_argument("--file-size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--turbo", help="path of a turbo binary (skipped without)")
    ap.add_argument("--turbo-max", type=int, default=10**9, help="largest size timed with turbo")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="also time mila with mila/ and plugins/ from DIR (e.g. `git archive "
                         "REV mila plugins | tar -x -C DIR`, compiled): before/after in one run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mila-ref-"))
    (tmp / "plugins").mkdir()
    (tmp / "plugins" / "mila_bench_hash_deployer.py").write_text(DEPLOYER)
    env = {**os.environ, "MILA_PLUGINS": "mila_bench_hash_deployer",
           "PYTHONPATH": os.pathsep.join([str(tmp / "plugins"), os.environ.get("PYTHONPATH", "")]),
           "TURBO_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1", "TURBO_NO_UPDATE_NOTIFIER": "1",
           "TURBO_PRINT_VERSION_DISABLED": "1"}
    for k in ("TURBO_TOKEN", "TURBO_TEAM", "TURBO_API"):
        env.pop(k, None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            one_size(size, args, tmp, env, mila_command())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
