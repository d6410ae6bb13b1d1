"""Benchmark of the build phase (``mila build``) on a synthetic monorepo (not a timed test).

Writes ``--services`` SAM services (one ``python3.12`` function each, ``arm64``, a
``requirements.txt`` naming ``--requirement``, a few source files) that all depend on one shared
workspace package, then times ``mila build`` in-process (``mila.build.build``, ``-c`` the
default):

* cold: an empty build cache — every function is built (pip installs Lambda-platform wheels
  from PyPI, through pip's own HTTP cache; the shared package is copied in);
* warm: nothing changed — every build is found in ``.mila/cache/build`` by its input key;
* one edit to the shared package — every service is rebuilt (each bundles it).

It prints each time and the ratio warm / cold (the target: under 10%). Needs network access to
PyPI for the cold build. Run ``python bench/bench_build.py`` (50 services) or ``--services 10``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT_TOML = """\
[project]
name = "bench"
default_region = "eu-west-1"
workspaces = ["packages/*", "services/*"]
[state]
backend = "local"
"""

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.handler
      Runtime: python3.12
      Architectures: [arm64]
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def generate(root: Path, services: int, requirement: str) -> None:
    write(root / "mila.toml", ROOT_TOML)
    shared = root / "packages/shared"
    write(shared / "pyproject.toml", '[project]\nname = "shared"\nversion = "1"\n'
                                     "dependencies = []\n")
    for i in range(20):
        write(shared / f"shared/mod{i}.py", f"VALUE = {i}\n" * 20)
    write(shared / "shared/__init__.py", "")
    for n in range(services):
        folder = root / f"services/svc{n:03d}"
        write(folder / "template.yaml", TEMPLATE)
        write(folder / "pyproject.toml", f'[project]\nname = "svc{n:03d}"\n'
                                         'dependencies = ["shared"]\n')
        write(folder / "src/requirements.txt", f"{requirement}\n")
        write(folder / "src/app.py", "import shared\n\ndef handler(e, c):\n"
                                     f"    return {n}\n")
        for i in range(5):
            write(folder / f"src/lib/m{i}.py", f"X = {n * 10 + i}\n")


def timed_build(root: Path) -> tuple[float, int]:
    from mila.build import build
    from mila.orchestrator import default_concurrency
    from mila.project import load_project

    project = load_project(root)
    started = time.perf_counter()
    report = build(project, None, default_concurrency())
    elapsed = time.perf_counter() - started
    if not report.ok:
        failed = [(o.key, o.error) for o in report.outcomes.values() if o.error]
        sys.exit(f"build failed: {failed[:3]}")
    return elapsed, len(report.outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--requirement", default="six==1.17.0",
                        help="the registry dependency of every function (a small wheel)")
    args = parser.parse_args()
    from mila.orchestrator import default_concurrency

    work = Path(tempfile.mkdtemp(prefix="mila-bench-build-"))
    try:
        generate(work, args.services, args.requirement)
        print(f"{args.services} services (python3.12, arm64, {args.requirement} + one shared "
              f"workspace package), -c {default_concurrency()}")
        cold, count = timed_build(work)
        print(f"cold (empty cache)          {cold:8.2f} s  ({count} services)")
        warm, _ = timed_build(work)
        print(f"warm (nothing changed)      {warm:8.2f} s")
        (work / "packages/shared/shared/mod0.py").write_text("VALUE = -1\n")
        edited, _ = timed_build(work)
        print(f"shared package edited       {edited:8.2f} s  (every service rebuilt)")
        size = sum(p.stat().st_size for p in (work / ".mila/cache/build").rglob("*")
                   if p.is_file())
        print(f"cache size                  {size / 1e6:8.1f} MB")
        ratio = warm / cold
        print(f"warm / cold ratio           {ratio:8.3f}  (target < 0.10: "
              f"{'met' if ratio < 0.10 else 'NOT met'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
