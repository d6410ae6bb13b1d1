"""A plugin for tests of :mod:`mila.api`: a command written only against the public API."""

from __future__ import annotations

import click

from mila import hookimpl
from mila.api import Project, outputs, pass_project


@click.command("urls")
@click.option("-e", "--env", required=True)
@pass_project
def urls(project: Project, env: str) -> None:
    """Print each service's Url output."""
    click.echo(f"project {project.config.name} at {project.root.name}")
    for service, regions in outputs(project, env).items():
        for region, values in regions.items():
            click.echo(f"{service} {region} {values.get('Url', '-')}")


@hookimpl
def mila_commands():
    return [urls]
