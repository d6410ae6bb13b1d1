"""``mila validate``, ``mila why`` and ``mila diff``: what a plan would do, and why."""

from __future__ import annotations

import json

import click

from mila.cli.main import CliContext, cli, pass_cli
from mila.cli.options import env_option, regions_option, services_option
from mila.deploy import parse_services
from mila.environments import parse_regions
from mila.scope import select_regions
from mila.validation import validate_project


@cli.command("validate")
@click.option("-e", "--env", "environment", default="ENV", show_default=True,
              help="Environment name substituted for ${env} (the state is not read).")
@click.option("-s", "--services", help="Only these services (comma-separated).")
@click.option("--regions", help="Regions to check for (comma-separated; default: the "
                                "project's default_region). A service's own regions win.")
@click.option("--json", "as_json", is_flag=True, help="Print the warnings as JSON.")
@pass_cli
def validate_command(obj: CliContext, environment: str, services: str | None,
                     regions: str | None, as_json: bool) -> None:
    """Check every service as a deploy would, without the state or credentials.

    Templates parse, parameters resolve (dependency outputs count as known after apply),
    template parameters without a default have values, and CloudFormation templates pass
    cfn-lint. Exit 2 listing every error; warnings are printed."""
    project = obj.project()
    wanted = parse_regions(regions) if regions else (project.config.default_region,)
    plan, warnings = validate_project(project, environment, wanted, parse_services(services))
    checked = sorted({a.service for a in plan.actions})
    if as_json:
        click.echo(json.dumps({"services": checked,
                               "warnings": [w.to_json() for w in warnings]}, indent=2))
        return
    for w in warnings:
        click.echo(f"warning: {w}")
    click.echo(f"{len(checked)} service{'s' if len(checked) != 1 else ''} valid"
            + (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""))


@cli.command("why")
@env_option()
@click.argument("service")
@regions_option()
@click.option("--json", "as_json", is_flag=True, help="Print the actions and reasons as JSON.")
@pass_cli
def why_command(obj: CliContext, environment: str, service: str, regions: str | None,
                as_json: bool) -> None:
    """Why SERVICE is (or is not) deployed by the next `mila deploy -e ENV`.

    Compares the manifest stored with its last successful deploy in each region against the
    current one: files, dependencies, parameters, consumed outputs, versions, forced, failed
    last time, region added."""
    from mila.deploy import prepare

    project = obj.project()
    chosen = select_regions(project.state.get_environment(environment), regions)
    prepared = prepare(project, environment, only=[service], regions=chosen, validate=False)
    actions = [a for a in prepared.plan.actions if a.service == service]
    if as_json:
        click.echo(json.dumps([{"service": a.service, "region": a.region,
                                "action": a.kind.value, "reasons": list(a.reasons)}
                               for a in actions], indent=2))
        return
    if not actions:
        click.echo(f"{service} has nothing planned in {environment}"
                   + (f" {', '.join(chosen)}" if chosen else ""))
    for a in actions:
        click.echo(f"{a.service} in {a.region}: {a.kind.value}")
        for reason in a.reasons or (a.reason,):
            click.echo(f"  {reason}")


@cli.command("diff")
@env_option()
@services_option()
@regions_option()
@click.option("--json", "as_json", is_flag=True,
              help="Print the plan as JSON, each action with its `diff`.")
@pass_cli
def diff_command(obj: CliContext, environment: str, services: str | None,
                 regions: str | None, as_json: bool) -> None:
    """What `mila deploy -e ENV` would change, resource by resource, without changing it.

    For each deploy, the deployer describes its changes (the CloudFormation deployers create a
    change set, describe it and delete it): Add / Modify / Remove, whether a resource is
    replaced, and which properties change. Nothing is locked or recorded."""
    from mila.cli.deploy_cmd import render_diffs, render_plan
    from mila.deploy import plan_to_json, prepare
    from mila.diff import describe_plan

    project = obj.project()
    prepared = prepare(project, environment, only=parse_services(services),
                       regions=select_regions(project.state.get_environment(environment), regions))
    prepared.diffs = describe_plan(project, prepared)
    if as_json:
        click.echo(json.dumps(plan_to_json(prepared), indent=2))
        return
    from mila import ui

    console = ui.make_console()
    render_plan(console, prepared)
    render_diffs(console, prepared)
