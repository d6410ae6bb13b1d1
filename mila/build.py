"""The build phase: each service's deployer builds (if it can) before anything is locked.

:func:`build_service` runs one service's :class:`~mila.protocols.Builder` (a deployer that has
a ``build`` method) with a :class:`~mila.protocols.BuildContext`; the deploy flow calls it for
every changing action before taking the lock, so a failing build writes nothing. :func:`build`
builds a selection of services in parallel, dependency-ordered — ``mila build``. Builds are
kept in :func:`build_cache_dir` (``.mila/cache/build``), which ``mila cache clear`` empties with
the rest of ``.mila/cache``.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TextIO

from mila.model import Workspace, frozen_mapping
from mila.names import check_services
from mila.orchestrator import RunReport, Task, run_tasks
from mila.project import Project
from mila.protocols import BuildContext, Builder


def cache_dir(project: Project) -> Path:
    """``.mila/cache``: digests and builds, all of it safe to delete."""
    return project.config.cache_dir


def build_cache_dir(project: Project) -> Path:
    return cache_dir(project) / "build"


def workspace_packages(project: Project, ws: Workspace) -> dict[str, str]:
    """The workspace packages ``ws`` depends on, transitively: name -> root-relative folder."""
    graph = project.graph
    return {d: graph[d].path for d in graph.dependencies(ws.name, transitive=True)
            if not graph[d].is_service}


def build_service(project: Project, ws: Workspace, *,
                  report: Callable[[str, str], None] = lambda phase, message: None,
                  log: TextIO | None = None, cancel: threading.Event | None = None) -> bool:
    """Build ``ws`` with its deployer; ``False`` when there was nothing to build."""
    if ws.deployer is None:
        return False
    deployer = project.deployer(ws.deployer)
    if not isinstance(deployer, Builder):
        return False
    context = BuildContext(root=project.root, cache=build_cache_dir(project),
                           packages=frozen_mapping(workspace_packages(project, ws)),
                           report=report, log=log, cancel=cancel or threading.Event())
    return deployer.build(ws, context) is not False


def build(project: Project, only: Collection[str] | None, concurrency: int,
          on_finish: Callable[[object], None] | None = None,
          cancel: threading.Event | None = None) -> RunReport:
    """Build every service (or ``only``), ``concurrency`` at once, dependencies first."""
    graph = project.graph
    services = {s.name: s for s in graph.services}
    if only is not None:
        check_services(graph, sorted(only))
    chosen = [n for n in services if only is None or n in only]

    def run(ws: Workspace, event: threading.Event) -> bool:
        return build_service(project, ws, cancel=event)

    tasks = [Task((name, ""), functools.partial(run, services[name]),
                  tuple((d, "") for d in graph.dependencies(name, transitive=True)
                        if d in chosen))
             for name in chosen]
    return run_tasks(tasks, concurrency, cancel=cancel, on_finish=on_finish)


def clear_cache(project: Project) -> int:
    """Delete ``.mila/cache`` (file digests and builds); returns the bytes freed."""
    folder = cache_dir(project)
    if not folder.is_dir():
        return 0
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(folder)
    return size
