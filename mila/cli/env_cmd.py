"""``mila env show``: a service's environment variables, where each comes from, and its value
(masked for secrets and SecureString parameters). The rules live in :mod:`mila.variables`."""

from __future__ import annotations

import json

import click

from mila import ui
from mila.cli.main import CliContext, cli, pass_cli
from mila.cli.options import env_option, regions_option, services_option
from mila.deploy import parse_services
from mila.errors import EXIT_USAGE, Reported
from mila.names import check_services
from mila.scope import select_regions
from mila.variables import VariableResolver, VariableView, show_variables


@cli.group("env")
def env_group() -> None:
    """Inspect the environment variables services receive (envs/.env files)."""


@env_group.command("show")
@env_option()
@services_option()
@regions_option("Only these regions (default: the environment's regions).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def env_show(obj: CliContext, environment: str, services: str | None, regions: str | None,
             as_json: bool) -> None:
    """Show each variable of ENV's services: its value and the file and line it comes from.

    References (${ssm:...}, ${secret:...}) are looked up in each region; the values of secrets
    and SecureString parameters are shown as ****. Exits 2 when a variable cannot be resolved
    (a deploy would be refused)."""
    project = obj.project()
    names = parse_services(services)
    if names is not None:
        check_services(project.graph, names)
    chosen = [s for s in project.graph.services if names is None or s.name in names]
    env = project.state.get_environment(environment)
    in_scope = select_regions(env, regions) or env.regions
    records = {(r.service, r.region): r.outputs for r in project.state.records(environment)}
    resolver = VariableResolver(project)
    views: list[VariableView] = []
    for ws in chosen:
        for r in (r for r in in_scope if ws.regions is None or r in ws.regions):
            outputs = {d: records[(d, r)] for d in project.graph.dependencies(ws.name, transitive=True)
                       if (d, r) in records}
            views += show_variables(resolver, ws, environment, r, outputs)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in views], indent=2, ensure_ascii=False))
    elif not views:
        ui.echo(f"no variables in {environment}: add envs/.env files (see docs/configuration.md)")
    else:
        rows = [(v.service, v.region, v.name,
                 v.value if v.error is None else f"error: {v.error}", v.source) for v in views]
        ui.echo(ui.table(["service", "region", "variable", "value", "from"], rows))
    if any(v.error for v in views):
        # a plan would be refused: say so to scripts too
        raise Reported(EXIT_USAGE, "a variable cannot be resolved")
