"""``mila plugins``: every loaded plugin, its hooks and what it registers."""

from __future__ import annotations

import json
from typing import Any

import click

from mila import ui
from mila.cli.main import CliContext, cli, pass_cli
from mila.errors import ProjectNotFound


def describe_plugins(obj: CliContext) -> list[dict[str, Any]]:
    try:
        pm = obj.project().pm
    except ProjectNotFound:  # outside a project: every installed plugin
        from mila.plugins import build_plugin_manager
        pm = build_plugin_manager()
    out = []
    for name, info in sorted(pm.infos.items()):
        out.append({
            "name": name,
            "module": info.module,
            "distribution": info.distribution,
            "version": info.version,
            "source": info.source,
            "hooks": pm.hooks_of(name),
            "registers": pm.registered_by(name),
        })
    return out


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def plugins_command(obj: CliContext, as_json: bool) -> None:
    """List loaded plugins: distribution, version, hooks and what each registers."""
    plugins = describe_plugins(obj)
    if as_json:
        click.echo(json.dumps(plugins, indent=2))
        return
    rows = []
    for p in plugins:
        registers = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registers"].items())
        dist = f"{p['distribution']} {p['version']}" if p["distribution"] else f"({p['source']})"
        rows.append((p["name"], dist, ", ".join(p["hooks"]), registers))
    ui.echo(ui.table(["plugin", "distribution", "hooks", "registers"], rows))
