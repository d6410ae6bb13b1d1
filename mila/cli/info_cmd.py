"""``mila info``: the project, its services and packages, and the dependency graph."""

from __future__ import annotations

import click
from rich.tree import Tree

from mila import ui
from mila.cli.main import CliContext, cli, pass_cli
from mila.cli.options import AliasedOption
from mila.errors import MilaError
from mila.suggest import did_you_mean


@cli.command("info")
@click.option("--graph", is_flag=True, help="Print the dependency tree.")
@click.option("-s", "--services", "--service", "name", cls=AliasedOption,
              hidden_aliases=("--service",), metavar="NAME",
              help="Show one workspace's dependencies and dependents.")
@pass_cli
def info_command(obj: CliContext, graph: bool, name: str | None) -> None:
    """Show the project, its services and packages."""
    project = obj.project()
    g = project.graph
    if name:
        if name not in g:
            raise MilaError(f"no workspace named '{name}'",
                            hint=did_you_mean(name, [w.name for w in g], "workspaces"))
        ws = g[name]
        ui.echo(f"{ws.name} ({ws.kind}{', deployer ' + ws.deployer if ws.deployer else ''}) "
                f"at {ws.path}")
        ui.echo(f"  depends on: {', '.join(g.dependencies(name, transitive=True)) or '-'}")
        ui.echo(f"  dependents: {', '.join(g.dependents(name, transitive=True)) or '-'}")
        return
    if graph:
        tree = Tree(f"{project.config.name}")
        def add(node: Tree, n: str, path: tuple[str, ...]) -> None:
            for dep in g.dependencies(n):
                add(node.add(dep), dep, (*path, dep))
        for ws in g.services:
            if not g.dependents(ws.name):
                add(tree.add(f"{ws.name}"), ws.name, (ws.name,))
        ui.echo(tree)
        return
    c = project.config
    ui.echo(f"project   {c.name}")
    ui.echo(f"root      {c.root}")
    ui.echo(f"region    {c.default_region}")
    ui.echo(f"state     {c.state.backend}")
    rows = [(w.name, w.kind, w.deployer or "-", w.path, ", ".join(w.depends_on) or "-")
            for w in g]
    ui.echo(ui.table(["workspace", "kind", "deployer", "path", "depends on"], rows))
