"""The ``mila`` group: global options, error handling, and plugin commands."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from mila import __version__
from mila.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    MilaError,
    ProjectNotFound,
    Reported,
    Terminated,
)
from mila.logs import configure_logging


@dataclass
class CliContext:
    """Global options, and the project loaded on first use."""

    project_dir: Path | None = None
    verbose: int = 0
    log_format: str = "console"
    #: the environment of ``-e`` (or ``MILA_ENV``), told to the plugins when the project loads
    environment: str | None = None
    _project: Any = field(default=None, repr=False)

    def project(self) -> Any:
        if self._project is None:
            from mila.project import load_project
            self._project = load_project(self.project_dir)
        if self.environment is not None:
            self._project.select_environment(self.environment)
        return self._project


pass_cli = click.make_pass_decorator(CliContext)


def report_error(exc: MilaError, verbose: int) -> None:
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {exc}", err=True)


def with_suggestions(exc: MilaError, obj: CliContext | None) -> MilaError:
    """An unknown environment, with the closest existing ones (one more state read, on error
    only)."""
    from mila.errors import EnvironmentNotFound

    if not isinstance(exc, EnvironmentNotFound) or obj is None or obj._project is None:
        return exc
    from mila.names import environment_not_found

    try:
        known = [e.name for e in obj._project.state.list_environments()]
    except Exception:  # the error at hand matters more than a failed hint
        return exc
    return environment_not_found(exc, known)


#: Where each core command is defined. Modules register their commands on ``cli`` when
#: imported; importing them only when a command is asked for keeps start-up fast (`mila
#: checksums` never imports the deploy flow). ``envs`` spans two modules: the subcommands that
#: deploy live with the deploy commands.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "affected": ("mila.cli.checksums_cmd",),
    "apply": ("mila.cli.deploy_cmd",),
    "build": ("mila.cli.build_cmd",),
    "cache": ("mila.cli.build_cmd",),
    "checksums": ("mila.cli.checksums_cmd",),
    "completion": ("mila.cli.completion_cmd",),
    "deploy": ("mila.cli.deploy_cmd",),
    "destroy": ("mila.cli.deploy_cmd",),
    "env": ("mila.cli.env_cmd",),
    "envs": ("mila.cli.state_cmd", "mila.cli.deploy_cmd"),
    "history": ("mila.cli.state_cmd",),
    "info": ("mila.cli.info_cmd",),
    "init": ("mila.cli.state_cmd",),
    "locks": ("mila.cli.state_cmd",),
    "logs": ("mila.cli.logs_cmd",),
    "new": ("mila.cli.new_cmd",),
    "outputs": ("mila.cli.outputs_cmd",),
    "plugins": ("mila.cli.plugins_cmd",),
    "release-lock": ("mila.cli.state_cmd",),
    "remove": ("mila.cli.deploy_cmd",),
    "validate": ("mila.cli.plan_cmd",),
    "why": ("mila.cli.plan_cmd",),
    "diff": ("mila.cli.plan_cmd",),
}


def load_core_commands(*names: str) -> None:
    """Import the modules defining ``names`` (all core commands when none is given)."""
    import importlib

    for name in names or tuple(COMMAND_MODULES):
        for module in COMMAND_MODULES.get(name, ()):
            importlib.import_module(module)


#: The group's options, accepted after the subcommand too (``mila deploy -e dev -v``): those
#: taking a value, and the flags. Moved in front of the subcommand before click parses.
GLOBAL_VALUE_OPTIONS = ("-C", "--project-dir", "--log-format")
GLOBAL_FLAGS = ("-v", "--verbose")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the subcommand (and before ``--``) to the front."""
    front: list[str] = []
    rest: list[str] = []
    i, seen_command = 0, False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        is_flag = arg in GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"})
        takes_value = arg in GLOBAL_VALUE_OPTIONS
        inline = any(arg.startswith(o + "=") for o in GLOBAL_VALUE_OPTIONS if o.startswith("--")) \
            or (arg.startswith("-C") and len(arg) > 2)
        if not seen_command and not arg.startswith("-"):
            seen_command = True
            rest.append(arg)
        elif seen_command and (is_flag or inline):
            front.append(arg)
        elif seen_command and takes_value and i + 1 < len(args):
            front.extend(args[i:i + 2])
            i += 1
        else:
            if not seen_command and takes_value and i + 1 < len(args):
                rest.extend(args[i:i + 2])
                i += 2
                continue
            rest.append(arg)
        i += 1
    return front + rest


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
        except ProjectNotFound:  # outside a project: the installed plugins' commands
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

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from mila.suggest import close_matches

            matches = close_matches(name, self.list_commands(ctx))
            hint = (" Did you mean " + " or ".join(f"'{m}'" for m in matches) + "?") \
                if matches else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMAND_MODULES:
            load_core_commands(cmd_name)
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        return self._plugin_commands(ctx).get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with terminate_as_interrupt():
                return super().invoke(ctx)
        except Reported as exc:  # the command's output said why
            ctx.exit(exc.exit_code)
        except MilaError as exc:
            obj = ctx.find_object(CliContext)
            report_error(with_suggestions(exc, obj), obj.verbose if obj else 0)
            ctx.exit(exc.exit_code)
        except Terminated as exc:
            click.echo(f"stopped by {signal.Signals(exc.signum).name}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` (a ``KeyboardInterrupt``) in the main
    thread, so a run stops as on Ctrl-C: actions cancelled, recorded, locks released.

    SIGINT raises ``KeyboardInterrupt`` even when mila was started with it ignored (a shell
    starts background jobs so, and a CI runner may run its script as one): a cancelled job's
    SIGINT must stop the run cleanly, not be lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
              if s is not None]
    previous = {s: signal.signal(s, handler) for s in wanted}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


class EnvChoice(click.Choice):  # type: ignore[type-arg]
    """A choice that, when the bad value came from the option's environment variable, names
    the variable (the user never typed the flag)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            envvar = getattr(param, "envvar", None)
            if ctx is not None and param is not None and param.name and isinstance(envvar, str) \
                    and ctx.get_parameter_source(param.name) is \
                    click.core.ParameterSource.ENVIRONMENT:
                raise click.BadParameter(f"{value!r} is not one of "
                                         f"{', '.join(map(repr, self.choices))}.",
                                         ctx, param, param_hint=f"${envvar}") from exc
            raise


@click.group(cls=MilaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mila")
@click.option("-C", "--project-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run as if started in DIR (default: the current directory).")
@click.option("-v", "--verbose", count=True, help="More logs; -vv for debug. Tracebacks on errors.")
@click.option("--log-format", type=EnvChoice(["console", "json"]), default="console",
              show_default=True, envvar="MILA_LOG_FORMAT",
              help="Log lines for people, or JSON lines for CI (or $MILA_LOG_FORMAT).")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, verbose: int, log_format: str) -> None:
    """Deploy the serverless services of a monorepo to AWS, per environment and region,
    redeploying only what changed.

    The options above may also follow the command (`mila deploy -e dev -v`)."""
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
