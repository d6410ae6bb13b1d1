"""The public API for plugins: reach the current project, its config, graph, state and outputs.

What is public and versioned (changed only additively within a major version; see
``docs/plugins.md``, "Stability"): this module, :mod:`mila.hookspecs` (hook names and
arguments), :mod:`mila.protocols` (``StateBackend``, ``Deployer``, ``Hasher`` and their
registration types), :mod:`mila.model` (the frozen values that cross the boundary),
:mod:`mila.errors` (``MilaError`` and its family, with ``hint=``) and :mod:`mila.testing`
(contract suites and the pytester; the sandbox's fixtures and helpers are the sandbox
plugin's, :mod:`mila_sandbox.testing`). Everything else under ``mila.`` is
internal and may change in any release.

A plugin command gets the project the user asked for (``-C``, the config, the plugins) with
:func:`pass_project`; a script or a test calls :func:`load_project`::

    import click
    from mila.api import Project, outputs, pass_project

    @click.command("urls")
    @click.option("-e", "--env", required=True)
    @pass_project
    def urls(project: Project, env: str) -> None:
        for service, regions in outputs(project, env).items():
            for region, values in regions.items():
                click.echo(f"{service} {region} {values.get('Url', '-')}")

The project loads lazily: nothing touches the state (or AWS) until ``project.state`` is read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from mila.config import ProjectConfig
from mila.errors import ConfigError, MilaError
from mila.model import Environment, Identity, Record, Workspace
from mila.project import Project
from mila.project import load_project as _load_project
from mila.workspace import WorkspaceGraph

__all__ = [
    "ConfigError",
    "Environment",
    "Identity",
    "MilaError",
    "Project",
    "ProjectConfig",
    "Record",
    "Workspace",
    "WorkspaceGraph",
    "current_project",
    "load_project",
    "outputs",
    "pass_project",
    "records",
]

F = TypeVar("F", bound=Callable[..., Any])


def load_project(path: Path | str | None = None) -> Project:
    """Load the project containing ``path`` (default: the current folder), as ``mila -C path``.

    Raises :class:`ConfigError` when no ``mila.toml`` is found or the config is invalid.
    """
    return _load_project(Path(path) if path is not None else None)


def current_project(ctx: click.Context | None = None) -> Project:
    """The project of the running ``mila`` command (honouring ``-C``), from the click context.

    Outside a ``mila`` command (no context), the project of the current folder.
    """
    from mila.cli.main import CliContext

    ctx = ctx or click.get_current_context(silent=True)
    obj = ctx.find_object(CliContext) if ctx is not None else None
    if obj is None:
        return load_project()
    return cast("Project", obj.project())


def pass_project(f: F) -> F:
    """Decorator for a plugin's click command: the current :class:`Project` is the first
    argument (errors loading it are reported by mila as one line and exit 2)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(current_project(), *args, **kwargs)

    return cast("F", wrapper)


def records(project: Project, environment: str) -> list[Record]:
    """Every deployment record of ``environment`` (one state read), sorted by service, region."""
    return sorted(project.state.records(environment), key=lambda r: (r.service, r.region))


def outputs(project: Project, environment: str, service: str | None = None,
            region: str | None = None) -> dict[str, dict[str, Mapping[str, str]]]:
    """Recorded stack outputs: ``{service: {region: {name: value}}}``, optionally narrowed to
    one ``service`` and/or ``region``. Only services with a successful deploy have outputs."""
    found: dict[str, dict[str, Mapping[str, str]]] = {}
    for record in records(project, environment):
        if (service is None or record.service == service) and \
                (region is None or record.region == region) and record.checksum is not None:
            found.setdefault(record.service, {})[record.region] = record.outputs
    return found
