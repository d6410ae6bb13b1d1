"""``mila build`` (the build phase alone) and ``mila cache clear``.

Thin: parse, call :mod:`mila.build`, render one line per service. ``mila build`` exits 1 when a
build failed (its dependents are skipped), as ``mila deploy`` does for an action.
"""

from __future__ import annotations

from typing import Any

import click

from mila.cli.main import CliContext, cli, pass_cli
from mila.errors import EXIT_FAILED, Reported
from mila.model import Status
from mila.orchestrator import MAX_CONCURRENCY, default_concurrency


@cli.command("build")
@click.option("-e", "--env", "environment", metavar="ENV", default=None,
              help="Only the services `mila deploy -e ENV` would deploy now (reads the state).")
@click.option("-s", "--services", "selection", metavar="A,B",
              help="Only these services (and what they depend on is not built unless named).")
@click.option("-c", "--concurrency", type=click.IntRange(1, MAX_CONCURRENCY), default=None,
              help="Builds at once (default: half the threads, at least 4).")
@pass_cli
def build_command(obj: CliContext, environment: str | None, selection: str | None,
                  concurrency: int | None) -> None:
    """Build services as a deploy would (dependencies installed, workspace packages bundled),
    without deploying. Unchanged builds come from the cache under .mila/cache/build."""
    from mila.build import build
    from mila.deploy import parse_services, prepare

    project = obj.project()
    only = parse_services(selection)
    if environment is not None:  # the build phase of the deploy plan, alone
        plan = prepare(project, environment, only=only).plan
        only = sorted({a.service for a in plan.actions
                       if a.kind.changes and a.kind.value != "destroy"})
        if not only:
            click.echo(f"nothing to build: no service would deploy in '{environment}'")
            return

    def finished(outcome: Any) -> None:
        name = outcome.key[0]
        if outcome.status is Status.SUCCEEDED:
            what = "built" if outcome.result else "nothing to build"
            click.echo(f"{name}: {what} ({outcome.duration:.1f}s)")
        elif outcome.status is Status.FAILED:
            click.echo(f"{name}: failed: {outcome.error}", err=True)
        else:
            click.echo(f"{name}: {outcome.status.value}", err=True)

    report = build(project, only, concurrency or default_concurrency(), on_finish=finished)
    if not report.ok:
        raise Reported(EXIT_FAILED, "a build failed")


@cli.group("cache")
def cache_group() -> None:
    """The local cache under .mila/cache (file digests, builds)."""


@cache_group.command("clear")
@pass_cli
def cache_clear_command(obj: CliContext) -> None:
    """Delete .mila/cache: every cached file digest and build. Nothing else changes."""
    from mila.build import clear_cache

    freed = clear_cache(obj.project())
    click.echo(f"cleared the cache ({freed / 1e6:.1f} MB)")
