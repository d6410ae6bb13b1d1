"""The ``mila`` group: global options, error handling, and plugin commands."""

from __future__ import annotations

import contextlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from mila import __version__
from mila.errors import EXIT_INTERRUPTED, EXIT_USAGE, MilaError
from mila.logs import configure_logging


@dataclass
class CliContext:
    """Global options, and the project loaded on first use."""

    project_dir: Path | None = None
    verbose: int = 0
    log_format: str = "console"
    _project: Any = field(default=None, repr=False)

    def project(self) -> Any:
        if self._project is None:
            from mila.project import load_project
            self._project = load_project(self.project_dir)
        return self._project


pass_cli = click.make_pass_decorator(CliContext)


def report_error(exc: MilaError, verbose: int) -> None:
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {exc}", err=True)


#: Where each core command is defined. Modules register their commands on ``cli`` when
#: imported; importing them only when a command is asked for keeps start-up fast (`mila
#: checksums` never imports the deploy flow). ``envs`` spans two modules: the subcommands that
#: deploy live with the deploy commands.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "affected": ("mila.cli.checksums_cmd",),
    "apply": ("mila.cli.deploy_cmd",),
    "checksums": ("mila.cli.checksums_cmd",),
    "deploy": ("mila.cli.deploy_cmd",),
    "destroy": ("mila.cli.deploy_cmd",),
    "envs": ("mila.cli.state_cmd", "mila.cli.deploy_cmd"),
    "history": ("mila.cli.state_cmd",),
    "info": ("mila.cli.info_cmd",),
    "init": ("mila.cli.state_cmd",),
    "locks": ("mila.cli.state_cmd",),
    "plugins": ("mila.cli.plugins_cmd",),
    "release-lock": ("mila.cli.state_cmd",),
    "remove": ("mila.cli.deploy_cmd",),
}


def load_core_commands(*names: str) -> None:
    """Import the modules defining ``names`` (all core commands when none is given)."""
    import importlib

    for name in names or tuple(COMMAND_MODULES):
        for module in COMMAND_MODULES.get(name, ()):
            importlib.import_module(module)


class MilaGroup(click.Group):
    """Loads core commands on first use, adds plugin commands, and turns :class:`MilaError`
    into one line + exit code."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """Commands added by plugins; a name clashing with a core command is refused."""
        from mila.errors import PluginError
        from mila.plugins import build_plugin_manager

        obj = ctx.find_object(CliContext)
        try:
            pm = obj.project().pm if obj is not None else build_plugin_manager()
        except MilaError as exc:
            if "no mila.toml" not in str(exc):
                raise
            pm = build_plugin_manager()
        reg = pm.registry
        for name in reg.commands:
            if name in self.commands or name in COMMAND_MODULES:
                owner = pm.infos.get(reg.owners[("command", name)])
                raise PluginError(f"plugin '{owner.name if owner else '?'}' adds a command "
                                  f"'{name}', which mila already has",
                                  hint=f"rename the command, or add '{owner.name if owner else name}'"
                                       " to disable_plugins")
        return dict(reg.commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(COMMAND_MODULES)
        with contextlib.suppress(MilaError):  # help must work; running a command reports it
            names |= set(self._plugin_commands(ctx))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMAND_MODULES:
            load_core_commands(cmd_name)
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        return self._plugin_commands(ctx).get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MilaError as exc:
            obj = ctx.find_object(CliContext)
            report_error(exc, obj.verbose if obj else 0)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=MilaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mila")
@click.option("-C", "--project-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run as if started in DIR (default: the current directory).")
@click.option("-v", "--verbose", count=True, help="More logs; -vv for debug. Tracebacks on errors.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
              show_default=True, help="Log lines for people, or JSON lines for CI.")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, verbose: int, log_format: str) -> None:
    """Deploy the serverless services of a monorepo to AWS, per environment and region,
    redeploying only what changed."""
    if project_dir is not None and not project_dir.is_dir():
        raise click.BadParameter(f"'{project_dir}' is not a folder", param_hint="-C")
    configure_logging(verbose, log_format)
    ctx.obj = CliContext(project_dir, verbose, log_format)


def main() -> None:
    try:
        cli.main(prog_name="mila")
    except KeyboardInterrupt:  # pragma: no cover - raised outside a command
        sys.exit(EXIT_INTERRUPTED)



__all__ = ["EXIT_USAGE", "CliContext", "cli", "main", "pass_cli"]
