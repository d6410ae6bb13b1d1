"""``mila new [DIR]``: scaffold a project (prompts on a terminal, flags for CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mila import ui
from mila.cli.main import cli
from mila.scaffold import STATE_BACKENDS, NewProject, default_name, scaffold


@cli.command("new")
@click.argument("directory", required=False, default=".",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: the folder's name).")
@click.option("--region", help="Default AWS region (default: eu-west-1).")
@click.option("--state", type=click.Choice(STATE_BACKENDS),
              help="State backend: aws (DynamoDB + S3) or local (SQLite) (default: aws).")
@click.option("--service", help="Name of the SAM service (default: hello).")
@click.option("--package", help="Name of the shared package (default: common).")
@click.option("--no-input", is_flag=True, help="Ask nothing: defaults for what is not given.")
def new_command(directory: Path, name: str | None, region: str | None, state: str | None,
                service: str | None, package: str | None, no_input: bool) -> None:
    """Create a project in DIRECTORY (default: here) that deploys as created: mila.toml, one
    SAM service using one shared package.

    On a terminal it asks for what no option gives; in CI, pass the options (or --no-input)."""
    ask = not no_input and ui.is_terminal(sys.stdin)

    def value(given: str | None, question: str, default: str) -> str:
        if given is not None:
            return given
        return str(click.prompt(question, default=default)) if ask else default

    answers = NewProject(
        name=value(name, "Project name", default_name(directory)),
        region=value(region, "Default region", "eu-west-1"),
        state=value(state, f"State backend ({'/'.join(STATE_BACKENDS)})", "aws"),
        service=value(service, "First service", "hello"),
        package=value(package, "Shared package", "common"))
    written = scaffold(directory, answers)
    ui.echo(f"created {len(written)} files in {directory}")
    where = "" if directory == Path(".") else f"cd {directory} && "
    ui.echo(f"next: {where}mila init && mila envs create dev && mila deploy -e dev")
