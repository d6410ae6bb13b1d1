"""``mila outputs``: the stack outputs recorded for an environment, one line per output.

``--json`` is a contract: ``{service: {region: {output: value}}}``, every recorded service of
the environment (or the one named) and every region (or those of ``--region``); a service
deployed with no outputs maps its region to ``{}``.
"""

from __future__ import annotations

import json

import click

from mila.cli.main import CliContext, cli, pass_cli
from mila.cli.options import env_option, regions_option
from mila.names import check_deployed
from mila.scope import select_regions


@cli.command("outputs")
@env_option()
@click.argument("service", required=False)
@regions_option()
@click.option("--json", "as_json", is_flag=True,
              help="Print {service: {region: {output: value}}}.")
@pass_cli
def outputs_command(obj: CliContext, environment: str, service: str | None,
                    regions: str | None, as_json: bool) -> None:
    """Print the outputs of ENV's deployed services (or of SERVICE), one line per output."""
    project = obj.project()
    state = project.state
    env = state.get_environment(environment)
    chosen = select_regions(env, regions)
    records = state.records(environment)
    if service is not None:
        check_deployed(project.graph, [service], {r.service for r in records}, environment)
    tree: dict[str, dict[str, dict[str, str]]] = {}
    for r in sorted(records, key=lambda r: (r.service, r.region)):
        if (service is None or r.service == service) and (chosen is None or r.region in chosen):
            tree.setdefault(r.service, {})[r.region] = dict(sorted(r.outputs.items()))
    if as_json:
        click.echo(json.dumps(tree, indent=2, ensure_ascii=False))
        return
    lines = [(s, region, key, value) for s, by_region in tree.items()
             for region, outputs in by_region.items() for key, value in outputs.items()]
    if not lines:
        click.echo(f"no outputs recorded in {environment}", err=True)
        return
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    for line in lines:  # never wrapped nor cut: values are URLs and ARNs people copy
        click.echo("  ".join(c.ljust(w) for c, w in zip(line[:3], widths, strict=True))
                   + "  " + line[3])
