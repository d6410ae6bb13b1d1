"""``mila checksums`` and ``mila affected``: print checksums, list what changed since a revision.

Thin: parse, call :mod:`mila.checksums`, render. ``checksums --json`` is a contract used
outside this repository: ``{"services": {name: {"checksum", "depends_on"}}, "packages": {…}}``
with ``depends_on`` the direct dependencies, sorted. The checksum printed is the base checksum,
which is what a deploy records when no plugin adds checksum inputs.
"""

from __future__ import annotations

import json

import click

from mila.cli.main import CliContext, cli, pass_cli


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise click.BadParameter("give at least one name", param_hint="-s")
    return names


@cli.command("checksums")
@click.option("-s", "--services", "selection", metavar="A,B",
              help="Only these services or packages (comma-separated).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a stable contract).")
@pass_cli
def checksums_command(obj: CliContext, selection: str | None, as_json: bool) -> None:
    """Print each service's and package's checksum."""
    from mila.checksums import workspace_checksums

    project = obj.project()
    names = _names(selection)
    checksums = workspace_checksums(project, names)
    graph = project.graph
    shown = [n for n in sorted(checksums) if names is None or n in names]
    if as_json:
        out: dict[str, dict[str, object]] = {"services": {}, "packages": {}}
        for name in shown:
            ws = graph[name]
            out["services" if ws.is_service else "packages"][name] = {
                "checksum": checksums[name].checksum, "depends_on": sorted(ws.depends_on)}
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    from mila import ui

    rows = [(n, graph[n].kind, checksums[n].checksum, ", ".join(sorted(graph[n].depends_on)) or "-")
            for n in sorted(shown, key=lambda n: (not graph[n].is_service, n))]
    ui.echo(ui.table(["workspace", "kind", "checksum", "depends on"], rows))


@cli.command("affected")
@click.option("--since", "revision", required=True, metavar="REV",
              help="A git revision (branch, tag, commit) to compare the working tree with.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--why", is_flag=True, help="Say why each one is affected.")
@pass_cli
def affected_command(obj: CliContext, revision: str, as_json: bool, why: bool) -> None:
    """List the services whose inputs differ between REV and the working tree.

    Prints one service name per line (for scripts); ``--json`` adds packages and reasons. The
    workspaces and their dependency edges are today's; their files, their own ``mila.toml`` and
    the root ``mila.toml`` are read at REV.
    """
    from mila.affected import affected_since

    project = obj.project()
    commit, affected = affected_since(project, revision)
    if as_json:
        click.echo(json.dumps({
            "since": revision, "commit": commit,
            "services": [a.name for a in affected if a.kind == "service"],
            "packages": [a.name for a in affected if a.kind != "service"],
            "reasons": {a.name: list(a.reasons) for a in affected},
        }, indent=2))
        return
    for a in affected:
        if a.kind != "service":
            continue
        click.echo(a.name)
        if why:
            for reason in a.reasons:
                click.echo(f"  {reason}")
