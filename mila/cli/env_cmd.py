"""``mila env show``: a service's environment variables, where each comes from, and its value
(masked for secrets and SecureString parameters). The rules live in :mod:`mila.variables`."""

from __future__ import annotations

import json

import click

from mila import ui
from mila.cli.main import CliContext, cli, pass_cli
from mila.config import check_region
from mila.errors import EXIT_USAGE, MilaError
from mila.variables import VariableResolver, VariableView, show_variables


@cli.group("env")
def env_group() -> None:
    """Inspect the environment variables services receive (envs/.env files)."""


@env_group.command("show")
@click.option("-e", "--env", "environment", required=True, help="Environment.")
@click.option("-s", "--service", "service", help="Only this service.")
@click.option("--region", help="Only this region (default: the environment's regions).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def env_show(obj: CliContext, environment: str, service: str | None, region: str | None,
             as_json: bool) -> None:
    """Show each variable of ENV's services: its value and the file and line it comes from.

    References (${ssm:...}, ${secret:...}) are looked up in each region; the values of secrets
    and SecureString parameters are shown as ****. Exits 2 when a variable cannot be resolved
    (a deploy would be refused)."""
    project = obj.project()
    services = project.graph.services
    if service is not None:
        services = [s for s in services if s.name == service]
        if not services:
            names = ", ".join(s.name for s in project.graph.services) or "none"
            raise MilaError(f"no service named '{service}'", hint=f"services are: {names}")
    regions = [check_region(region, key="--region")] if region else \
        list(project.state.get_environment(environment).regions)
    records = {(r.service, r.region): r.outputs for r in project.state.records(environment)}
    resolver = VariableResolver(project)
    views: list[VariableView] = []
    for ws in services:
        for r in regions:
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
        raise SystemExit(EXIT_USAGE)  # a plan would be refused: say so to scripts too
