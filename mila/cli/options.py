"""Options shared by several commands, so each is spelled (and documented) once.

``-e/--env`` (or ``MILA_ENV``), ``-s/--services`` (``--service`` is accepted too, unlisted),
``--region R[,R]`` and ``--no-prompt`` (or ``--yes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable read when ``-e`` is not given.
ENV_VAR = "MILA_ENV"


class AliasedOption(click.Option):
    """An option whose ``hidden_aliases`` are accepted but left out of ``--help``."""

    def __init__(self, *args: Any, hidden_aliases: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = hidden_aliases

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [o for o in self.opts if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def env_option(help: str = "Environment (default: $MILA_ENV).", required: bool = True) -> Callable[[F], F]:
    return click.option("-e", "--env", "environment", required=required, envvar=ENV_VAR,
                        show_envvar=False, metavar="ENV", help=help,
                        shell_complete=_complete_environments, callback=_remember_environment)


def _remember_environment(ctx: click.Context, param: click.Parameter,
                          value: str | None) -> str | None:
    """The environment is known before the command loads the project: plugins are told of it
    as the project loads (per-environment roles apply to every cloud call)."""
    from mila.cli.main import CliContext

    if value is not None and not value.strip() and not ctx.resilient_parsing:
        raise click.BadParameter(f"the environment name is empty (from {_env_source(ctx, param)})")
    obj = ctx.find_object(CliContext)
    if obj is not None and value and not ctx.resilient_parsing:
        obj.environment = value
    return value


def _env_source(ctx: click.Context, param: click.Parameter) -> str:
    source = ctx.get_parameter_source(param.name) if param.name else None
    return f"${ENV_VAR}" if source is click.core.ParameterSource.ENVIRONMENT else "-e"


def services_option(help: str = "Only these services (comma-separated).",
                    dest: str = "services") -> Callable[[F], F]:
    return click.option("-s", "--services", "--service", dest, cls=AliasedOption,
                        hidden_aliases=("--service",), metavar="A,B", help=help,
                        shell_complete=_complete_services)


def regions_option(help: str = "Only these regions of the environment (comma-separated).") \
        -> Callable[[F], F]:
    return click.option("--region", "--regions", "regions", cls=AliasedOption,
                        hidden_aliases=("--regions",), metavar="R[,R]", help=help)


def no_prompt_option(f: F) -> F:
    return click.option("--no-prompt", "--yes", "no_prompt", is_flag=True,
                        help="Do not ask for confirmation (CI).")(f)


# ----------------------------------------------------------------------------- completion


def _complete_environments(ctx: click.Context, param: click.Parameter,
                           incomplete: str) -> list[str]:
    from mila.cli.completion import environment_names

    return [n for n in environment_names(ctx) if n.startswith(incomplete)]


def _complete_services(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from mila.cli.completion import complete_list, service_names

    return complete_list(incomplete, service_names(ctx))
