"""``mila logs``: an action's log kept on this machine, or a function's runtime logs."""

from __future__ import annotations

import time
from typing import Any

import click

from mila.action_logs import current_log, kept_log
from mila.cli.main import CliContext, cli, pass_cli
from mila.cli.options import env_option, regions_option
from mila.errors import MilaError
from mila.names import check_deployed, check_services
from mila.scope import select_regions


@cli.command("logs")
@env_option()
@click.argument("service")
@regions_option("Only these regions of the environment (comma-separated).")
@click.option("--action", "action_number", type=click.IntRange(min=1), metavar="N",
              help="The N-th newest action of SERVICE in `mila history` (default: the last "
                   "one run on this machine).")
@click.option("--function", metavar="NAME",
              help="Show the runtime logs of this function of the service's stack (its "
                   "logical id, or a function name) instead of the action's log.")
@click.option("--follow", "-f", is_flag=True, help="With --function: keep printing new lines.")
@click.option("--since", type=click.IntRange(min=0), default=10, show_default=True,
              metavar="MINUTES", help="With --function: from this many minutes ago.")
@pass_cli
def logs_command(obj: CliContext, environment: str, service: str, regions: str | None,
                 action_number: int | None, function: str | None, follow: bool,
                 since: int) -> None:
    """Show SERVICE's last action log in ENV, or (--function) its function's runtime logs."""
    project = obj.project()
    state = project.state
    env = state.get_environment(environment)
    chosen = select_regions(env, regions) or env.regions
    if function is None and follow:
        raise click.UsageError("--follow needs --function NAME")
    if function is not None:
        records = [r for r in state.records(environment) if r.region in chosen]
        check_deployed(project.graph, [service], {r.service for r in records}, environment)
        show_function_logs(project, [r for r in records if r.service == service], function,
                           since, follow)
        return
    check_services(project.graph, [service], known=_known(state, environment, service))
    if action_number is None:
        shown = 0
        for region in chosen:
            path = current_log(project.config.mila_dir, environment, service, region)
            if path.is_file():
                _print_log(path, len(chosen) > 1)
                shown += 1
        if not shown:
            raise MilaError(f"no log of {service} in {environment} on this machine",
                            hint="logs are written where the deploy ran; see `mila history`")
        return
    _print_action_log(project, environment, service, chosen, action_number)


def _known(state: Any, environment: str, service: str) -> set[str]:
    names = {r.service for r in state.records(environment)}
    if service not in names and state.history(environment, service=service, limit=1):
        names.add(service)
    return names


def _print_log(path: Any, header: bool) -> None:
    if header:
        click.echo(f"==> {path} <==")
    click.echo(path.read_text(encoding="utf-8", errors="replace"), nl=False)


def _print_action_log(project: Any, environment: str, service: str, regions: tuple[str, ...],
                      number: int) -> None:
    entries = [h for h in project.state.history(environment, service=service)
               if h.region in regions]
    if number > len(entries):
        raise MilaError(f"{service} has {len(entries)} action(s) in {environment}",
                        hint="count them with `mila history -e ENV -s SERVICE`")
    entry = entries[number - 1]
    path = kept_log(project.config.mila_dir, environment, service, entry.region, entry.at)
    if path is None:
        raise MilaError(f"no log of that action on this machine ({entry.action.value} in "
                        f"{entry.region} by {entry.by or '?'} at {entry.at:%Y-%m-%d %H:%M:%S})",
                        hint="an action's log stays on the machine that ran it")
    _print_log(path, False)


def show_function_logs(project: Any, records: list[Any], function: str, since: int,
                       follow: bool) -> None:
    if len(records) != 1:
        regions = ", ".join(r.region for r in records)
        raise MilaError(f"the service is deployed in several regions ({regions})",
                        hint="pick one with --region")
    since_ms = int((time.time() - since * 60) * 1000)
    handled = project.pm.hook.mila_function_logs(record=records[0], function=function,
                                                 since_ms=since_ms, follow=follow,
                                                 write=click.echo)
    if not handled:
        raise MilaError(f"no plugin reads function logs for the '{records[0].deployer}' "
                        "deployer", hint="the aws plugin does for CloudFormation stacks")
