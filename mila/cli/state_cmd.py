"""``mila init``, ``mila envs``, ``mila history``, ``mila locks``, ``mila release-lock``.

Thin callbacks: the rules live in :mod:`mila.environments` and the state backend.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import click

from mila import ui
from mila.cli.main import CliContext, cli, pass_cli
from mila.cli.options import env_option, regions_option, services_option
from mila.deploy import parse_services
from mila.environments import (
    check_account,
    check_environment_name,
    create_environment,
    describe_environment,
    force_release,
    matching_locks,
    parse_regions,
    refuse_live_locks,
    require_account,
)
from mila.errors import EnvironmentExists, MilaError
from mila.locks import describe_holder
from mila.model import Identity, utcnow
from mila.names import check_services
from mila.scope import select_regions
from mila.state_json import (
    environment_to_dict,
    history_to_dict,
    lock_to_dict,
    record_to_dict,
)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _short(checksum: str | None) -> str:
    return checksum[:12] if checksum else "-"


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def show_identity(identity: Identity | None) -> None:
    if identity is None:
        ui.echo("identity  none (no AWS credentials found)")
        return
    ui.echo(f"account   {identity.account}")
    ui.echo(f"identity  {identity.arn}" + (f" ({identity.source})" if identity.source else ""))


# ----------------------------------------------------------------------------- init


@cli.command("init")
@click.option("--print-policy", is_flag=True,
              help="Print the IAM policy document mila needs, and do nothing else.")
@pass_cli
def init_command(obj: CliContext, print_policy: bool) -> None:
    """Create the remote state (table and bucket); running it again changes nothing."""
    project = obj.project()
    state = project.state
    if print_policy:
        from mila.policy import project_policy

        _dump(project_policy(project))
        return
    identity = project.identity()
    show_identity(identity)
    check_account(project.config, identity)
    ui.echo(f"state     {state.location()}")
    created = state.init()
    for what in created:
        ui.echo(f"created   {what}")
    for note in getattr(state, "notes", []) or []:
        ui.echo(f"note      {note}")
    if not created:
        ui.echo("the state already exists, nothing to change")


# ----------------------------------------------------------------------------- envs


@cli.group("envs")
def envs_group() -> None:
    """Create, list, describe and destroy environments and their regions."""


@envs_group.command("create")
@click.argument("name")
@click.option("--regions", help="Comma-separated regions (default: [project].default_region).")
@click.option("--exist-ok", is_flag=True,
              help="Succeed when the environment already exists (pull-request pipelines); "
                   "its regions are left as they are.")
@pass_cli
def envs_create(obj: CliContext, name: str, regions: str | None, exist_ok: bool) -> None:
    """Register a new environment."""
    check_environment_name(name)
    project = obj.project()
    require_account(project, name)
    if regions is None:
        default = project.config.default_region
        regions = click.prompt("Regions (comma-separated)", default=default) \
            if ui.is_terminal(sys.stdin) and not exist_ok else default
    wanted = parse_regions(regions)
    try:
        env = create_environment(project.state, name, wanted)
    except EnvironmentExists:
        if not exist_ok:
            raise
        env = project.state.get_environment(name)
        note = "" if set(wanted) <= set(env.regions) else \
            f" (not adding {', '.join(r for r in wanted if r not in env.regions)}: use " \
            f"`mila envs create-replicate {name} REGION`)"
        ui.echo(f"environment {env.name} already exists in {', '.join(env.regions)}{note}")
        return
    ui.echo(f"created environment {env.name} in {', '.join(env.regions)}")


@envs_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def envs_list(obj: CliContext, as_json: bool) -> None:
    """List environments and their regions."""
    envs = obj.project().state.list_environments()
    if as_json:
        _dump([environment_to_dict(e) for e in envs])
        return
    if not envs:
        ui.echo("no environments yet; create one with `mila envs create NAME`")
        return
    ui.echo(ui.table(["environment", "regions", "created", "by"],
                     [(e.name, ", ".join(e.regions), _when(e.created_at), e.created_by)
                      for e in envs]))


@envs_group.command("describe")
@click.argument("name")
@click.option("--wide", is_flag=True, help="Add who deployed, the commit and the outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def envs_describe(obj: CliContext, name: str, wide: bool, as_json: bool) -> None:
    """Show what is deployed in an environment: one row per service and region.

    Fits 80 columns; `--wide` adds who deployed, the commit and the outputs (see also
    `mila outputs`)."""
    view = describe_environment(obj.project().state, name)
    if as_json:
        _dump({**environment_to_dict(view.environment),
               "records": [record_to_dict(r) for r in view.records],
               "locks": [lock_to_dict(lk) for lk in view.locks]})
        return
    env = view.environment
    ui.echo(f"environment {env.name}: {', '.join(env.regions)}")
    ui.echo(f"created {_when(env.created_at)} by {env.created_by or '-'}")
    if not view.records:
        ui.echo("nothing deployed yet")
    else:
        columns = ["service", "region", "status", "checksum", "deployed at"]
        rows: list[tuple[Any, ...]] = [
            (r.service, r.region, r.status.value, _short(r.checksum),
             r.deployed_at.strftime("%Y-%m-%d %H:%M") if r.deployed_at else "-")
            for r in view.records]
        if wide:
            columns += ["by", "commit", "outputs"]
            rows = [(*row, r.deployed_by, r.commit[:10] if r.commit else None,
                     ", ".join(f"{k}={v}" for k, v in sorted(r.outputs.items())) or None)
                    for row, r in zip(rows, view.records, strict=True)]
        ui.echo(ui.table(columns, rows))
    for lk in view.locks:
        ui.echo(f"locked    {lk.service} in {lk.region} by {describe_holder(lk)}")


# `envs destroy`, `envs create-replicate` and `envs destroy-replicate` run deploys and destroys:
# they live with the deploy commands in mila/cli/deploy_cmd.py.


# ----------------------------------------------------------------------------- history


@cli.command("history")
@env_option()
@services_option()
@regions_option()
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def history_command(obj: CliContext, environment: str, services: str | None,
                    regions: str | None, limit: int, as_json: bool) -> None:
    """Show the actions carried out in an environment, newest first."""
    project = obj.project()
    names = parse_services(services)
    chosen = select_regions(project.state.get_environment(environment), regions)
    entries = service_history(project, environment, names, limit if chosen is None else None)
    if chosen is not None:
        entries = [h for h in entries if h.region in chosen][:limit]
    if as_json:
        _dump([history_to_dict(h) for h in entries])
        return
    if not entries:
        ui.echo(f"no history in {environment}" + (f" for {', '.join(names)}" if names else ""))
        return
    rows = [(_when(h.at), h.service, h.region, h.action.value, h.status.value,
             _short(h.checksum), h.by, h.commit[:10] if h.commit else None,
             f"{h.duration_seconds:.1f}s" if h.duration_seconds is not None else None,
             h.message) for h in entries]
    ui.echo(ui.table(["at", "service", "region", "action", "status", "checksum", "by",
                      "commit", "took", "message"], rows))


# ----------------------------------------------------------------------------- locks


def service_history(project: Any, environment: str, names: list[str] | None,
                    limit: int | None) -> list[Any]:
    """The newest ``limit`` entries (of ``names`` only); a name that is no service and has no
    history is refused (exit 2) with the closest names."""
    state = project.state
    if names is None:
        return list(state.history(environment, limit=limit))
    entries = []
    for name in names:
        found = list(state.history(environment, service=name, limit=limit))
        if not found:
            check_services(project.graph, [name],
                           known={r.service for r in state.records(environment)})
        entries.extend(found)
    return sorted(entries, key=lambda h: h.at, reverse=True)[:limit]


@cli.command("locks")
@env_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_cli
def locks_command(obj: CliContext, environment: str, as_json: bool) -> None:
    """List the locks held in an environment."""
    locks = obj.project().state.locks(environment)
    if as_json:
        _dump([{**lock_to_dict(lk), "expired": lk.expired()} for lk in locks])
        return
    if not locks:
        ui.echo(f"no locks held in {environment}")
        return
    now = utcnow()
    rows = [(lk.service, lk.region, f"{lk.owner.user}@{lk.owner.host}", lk.owner.pid,
             lk.owner.ci_job, _when(lk.acquired_at),
             "expired" if lk.expired(now) else f"in {int((lk.expires_at - now).total_seconds())}s")
            for lk in locks]
    ui.echo(ui.table(["service", "region", "holder", "pid", "ci job", "since", "expires"], rows))


@cli.command("release-lock")
@env_option()
@services_option("Only the locks of these services (comma-separated; default: all).")
@click.option("--yes", "--no-prompt", "yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="Release even locks whose holder still heartbeats (a live run: it stops "
                   "and records 'lock lost').")
@pass_cli
def release_lock_command(obj: CliContext, environment: str, services: str | None,
                         yes: bool, force: bool) -> None:
    """Release the locks of a run that died, whoever holds them.

    A lock whose heartbeat is fresh (its run is alive) is refused (exit 3) without --force."""
    project = obj.project()
    state = project.state
    names = [s.strip() for s in services.split(",") if s.strip()] if services else None
    locks = matching_locks(state, environment, names)
    if not locks:
        ui.echo(f"no locks held in {environment}")
        return
    require_account(project, environment)
    if not force:
        refuse_live_locks(locks, timedelta(seconds=project.config.state.lock_lease_seconds))
    for lk in locks:
        ui.echo(f"{lk.service} in {lk.region}: held by {describe_holder(lk)}"
                + (" (expired)" if lk.expired() else ""))
    if not yes and not click.confirm(
            f"Release {len(locks)} lock(s)? A run still holding one will fail to record",
            default=False):
        raise MilaError("nothing released")
    released = force_release(state, locks)
    ui.echo(f"released {len(released)} lock(s)")
