"""``mila completion SHELL``: print the shell completion script (see docs/cli.md)."""

from __future__ import annotations

import click

from mila.cli.completion import SHELLS, completion_script
from mila.cli.main import cli


@cli.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    Completes commands, options, environment and service names. Load it with
    `eval "$(mila completion bash)"` in ~/.bashrc, `eval "$(mila completion zsh)"` in ~/.zshrc,
    or `mila completion fish > ~/.config/fish/completions/mila.fish`."""
    click.echo(completion_script(shell), nl=False)
