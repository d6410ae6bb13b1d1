"""``mila deploy``, ``mila apply``, ``mila remove`` (alias ``mila destroy``)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mila import ui
from mila.action_logs import KeepingReporter
from mila.cli.main import CliContext, cli, pass_cli
from mila.cli.options import env_option, no_prompt_option, regions_option, services_option
from mila.cli.state_cmd import envs_group
from mila.deploy import (
    Prepared,
    RunOptions,
    check_plan_for_worker,
    check_saved_plan,
    execute,
    load_plan_file,
    log_path,
    parse_services,
    plan_to_json,
    prepare,
    prepare_removal,
    stale_consumers,
    tail,
)
from mila.environments import (
    destroy_environment,
    removable_region,
    remove_region,
    replicate_region,
    require_account,
)
from mila.errors import (
    EXIT_CHANGES,
    EXIT_FAILED,
    Declined,
    MilaError,
    Reported,
)
from mila.locks import DEFAULT_TIMEOUT
from mila.model import ActionKind, Status
from mila.orchestrator import (
    MAX_CONCURRENCY,
    MIN_DEFAULT_CONCURRENCY,
    RunReport,
    default_concurrency,
)
from mila.progress import ProgressView, use_live_view
from mila.reasons import short as short_reason
from mila.results import plan_markdown, result_document, run_status
from mila.scope import restrict_plan_file, select_regions

if TYPE_CHECKING:
    from mila.model import Action
    from mila.project import Project
    from mila.workers import WorkerPlan

KIND_STYLE = {
    ActionKind.FIRST_DEPLOY: "bold green", ActionKind.DEPLOY: "yellow",
    ActionKind.NO_CHANGES: "dim", ActionKind.DESTROY: "bold red",
}


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def render_header(console: Console, obj: CliContext, prepared: Prepared) -> None:
    """Who acts (the account was checked before the plan, see :func:`require_account`), on
    which environment and state."""
    project = obj.project()
    deployers = {a.deployer for a in prepared.plan.actions if a.kind.changes}
    try:
        identity = project.identity(deployers)
        who = f"{identity.account} ({identity.arn})" if identity else \
            "unknown" if project.acts_in_the_cloud(deployers) else \
            "none needed (local state, no deployer in this plan acts in the cloud)"
    except MilaError as exc:
        who = f"unknown ({exc.message.split(':')[0]})"
    console.print(f"account      {who}", markup=False)
    console.print(f"environment  {prepared.environment.name} "
                  f"({', '.join(prepared.environment.regions)})", markup=False)
    console.print(f"state        {project.state.location()}", markup=False)


def render_plan(console: Console, prepared: Prepared, why: bool = False) -> None:
    """The plan table (a short ``why`` column on a terminal); with ``why``, every reason of
    every changing action below it."""
    plan = prepared.plan
    regions = plan.columns()
    cells: dict[str, dict[str, ActionKind]] = {}
    reasons: dict[str, tuple[str, ...]] = {}
    for a in plan.actions:
        cells.setdefault(a.service, {})[a.region] = a.kind
        if a.kind.changes and a.service not in reasons:
            reasons[a.service] = a.reasons
    table = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
    table.add_column("service")
    for r in regions:
        table.add_column(r)
    short_column = console.is_terminal and not why
    if short_column:
        table.add_column("why", style="dim", overflow="ellipsis", no_wrap=True)
    for service in sorted(cells):
        row: list[Any] = [service]
        for r in regions:
            kind = cells[service].get(r)
            row.append(Text(kind.value, style=KIND_STYLE[kind]) if kind else Text("-", style="dim"))
        if short_column:
            row.append(Text(short_reason(reasons.get(service, ()))))
        table.add_row(*row)
    if plan.actions:
        console.print(table)
    else:
        console.print("nothing to plan: no service and no record in this scope")
    if why:
        render_reasons(console, prepared)
    for warning in prepared.warnings:
        console.print(f"warning: {warning}", markup=False, style="yellow")
    deploys = plan.count(ActionKind.FIRST_DEPLOY, ActionKind.DEPLOY)
    console.print(f"{deploys} to deploy, {plan.count(ActionKind.NO_CHANGES)} unchanged, "
                  f"{plan.count(ActionKind.DESTROY)} to destroy", markup=False)


def render_reasons(console: Console, prepared: Prepared) -> None:
    """Every reason of every changing action, one service and region at a time."""
    for a in prepared.plan.actions:
        if not a.kind.changes:
            continue
        console.print(f"{a.service} in {a.region}: {a.kind.value}", markup=False, style="bold")
        for reason in a.reasons or (a.reason,):
            console.print(f"  {reason}", markup=False)


def render_diffs(console: Console, prepared: Prepared) -> None:
    """Each changing action's resource changes (``--diff``, ``mila diff``)."""
    for a in prepared.plan.actions:
        diff = prepared.diffs.get(a.key)
        if diff is None:
            continue
        if diff.changes is None:
            console.print(f"{a.service} in {a.region}: {diff.note}", markup=False)
            continue
        count = len(diff.changes)
        console.print(f"{a.service} in {a.region}: {count} resource change"
                      f"{'s' if count != 1 else ''}", markup=False, style="bold")
        for change in diff.changes:
            style = "bold red" if change.replacement == "True" or change.action == "Remove" \
                else None
            console.print(f"  {change}", markup=False, style=style)


def confirm(prepared: Prepared, no_prompt: bool, *, only_prompt: bool = False) -> bool:
    """Ask whether to go ahead; ``only_prompt``: the command has --only-prompt (the hint names it)."""
    if no_prompt:
        return True
    if not stdin_is_terminal():
        alternative = ", or --only-prompt to print the plan only" if only_prompt else ""
        raise MilaError("no terminal to confirm the plan",
                        hint=f"pass --no-prompt to go ahead without confirmation (CI){alternative}")
    destroys = prepared.plan.count(ActionKind.DESTROY)
    question = "Apply this plan?" + (f" It DESTROYS {destroys} stack(s)." if destroys else "")
    return click.confirm(question, default=not destroys, err=True)


def run_plan(obj: CliContext, prepared: Prepared, concurrency: int | None, lock_timeout: int | None,
             disable_rollback: bool, human: Console, result_of: str | None = None,
             worker: WorkerPlan | None = None) -> None:
    """Execute, render progress and summary, print the result document (``--json``: the
    command's name in ``result_of``), and exit with the right code."""
    report = execute_with_progress(obj, prepared, concurrency, lock_timeout, disable_rollback,
                                   human, worker)
    if result_of is not None:
        print_result(obj, result_of, prepared, report)
    if report is not None:
        exit_for(report)


def print_result(obj: CliContext, command: str, prepared: Prepared,
                 report: RunReport | None) -> None:
    project = obj.project()
    doc = result_document(command, prepared, report, plan_to_json(prepared),
                          lambda a: log_path(project, a))
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def exit_for(report: RunReport) -> None:
    """Exit 130 when interrupted (143 SIGTERM, 129 SIGHUP), 3 when only lock waits timed out,
    1 on any failure."""
    code = run_status(report)[1]
    if code:
        raise Reported(code, f"run status: {run_status(report)[0]}")


def execute_with_progress(obj: CliContext, prepared: Prepared, concurrency: int | None,
                          lock_timeout: int | None, disable_rollback: bool,
                          human: Console, worker: WorkerPlan | None = None) -> RunReport | None:
    """Execute the plan (as one of its workers with ``worker``) with the live view or CI lines,
    then print the summary table and the last lines of each failure's log. ``None`` when there
    was nothing to do."""
    project = obj.project()
    plan = prepared.plan
    if not (plan.has_changes if worker is None else worker.actions):
        human.print("nothing to do", markup=False)
        return None
    lease = timedelta(seconds=project.config.state.lock_lease_seconds)
    options = RunOptions(concurrency=concurrency or default_concurrency(),
                         lock_timeout=timedelta(seconds=lock_timeout) if lock_timeout is not None
                         else max(DEFAULT_TIMEOUT, 2 * lease),
                         lock_ttl=lease, disable_rollback=disable_rollback)
    running = [a for a in plan.actions if a.kind.changes] if worker is None \
        else list(worker.actions.values())
    live = use_live_view(human, obj.log_format)
    with ProgressView(running, human, live) as view:
        keeping = KeepingReporter(view, project.config.mila_dir, {a.key: a for a in running})
        report = execute(project, prepared, options, keeping, worker=worker)
    print_summary(project, prepared, running, report, human, worker is not None)
    return report


def print_summary(project: Project, prepared: Prepared, running: list[Action],
                  report: RunReport, human: Console, as_worker: bool) -> None:
    """The summary table (a worker's: its own work, the others' as one line), notes, and the
    last lines of each failure's log on stderr."""
    from mila.workers import DONE_ELSEWHERE

    table = Table(show_edge=False, header_style="bold", box=None, pad_edge=False)
    # on a narrow terminal the names shrink first: a result or a duration is never cut
    for col in ("service", "region", "action"):
        table.add_column(col, overflow="ellipsis")
    table.add_column("result", no_wrap=True, min_width=len(Status.SUCCEEDED.value))
    table.add_column("duration", no_wrap=True)
    failed, elsewhere = [], 0
    for a in running:
        o = report.outcomes[a.key]
        if as_worker and o.status is Status.SKIPPED and o.message == DONE_ELSEWHERE:
            elsewhere += 1  # a worker's table shows its own work; the others' as one line
            continue
        style = {Status.SUCCEEDED: "green", Status.FAILED: "red"}.get(o.status, "yellow")
        table.add_row(a.service, a.region, a.kind.value, Text(o.status.value, style=style),
                      f"{o.duration:.1f}s")
        if o.status is Status.FAILED:
            failed.append((a, o))
    if table.row_count:
        human.print(table)
    if elsewhere:
        human.print(f"{elsewhere} action(s) done by another worker", markup=False)
    human.print(f"total {report.wall_seconds:.1f}s", markup=False)
    for line in stale_consumers(prepared, {k: o.result for k, o in report.outcomes.items()
                                           if o.status is Status.SUCCEEDED}):
        human.print(f"note: {line}", markup=False, style="yellow")
    errors = ui.make_console(stderr=True)  # each failure once, on stderr, at the end
    for a, o in failed:
        path = log_path(project, a)
        errors.print(f"\n{a.service} in {a.region} failed: {o.error}", markup=False)
        for line in tail(path):
            errors.print(f"  | {line}", markup=False)
        errors.print(f"  full log: {path}", markup=False)
    if report.cancelled:
        human.print("interrupted: running actions were stopped, locks released", markup=False)


def json_result_option(f: Any) -> Any:
    return click.option(
        "--json", "as_json", is_flag=True,
        help="Print one JSON result document on stdout when done: every action's status, "
             "duration, outputs, error and log, and the plan (see docs/json-output.md). "
             "Tables and progress go to stderr.")(f)


def deploy_options(f: Any) -> Any:
    f = click.option("-c", "--concurrency", type=click.IntRange(1, MAX_CONCURRENCY),
                     help=f"Actions run at once (1-{MAX_CONCURRENCY}; default: half the "
                          f"machine's threads, at least {MIN_DEFAULT_CONCURRENCY}).")(f)
    f = no_prompt_option(f)
    f = click.option("--lock-timeout", type=click.IntRange(0, 24 * 3600), default=None,
                     metavar="SECONDS",
                     help="How long to wait for a lock held by another run; then exit 3 "
                          "(default: 600, or twice [state] lock_lease_seconds if longer).")(f)
    return f


@cli.command("deploy")
@env_option("Environment to deploy (default: $MILA_ENV).")
@services_option()
@regions_option()
@deploy_options
@click.option("--only-prompt", "--on-prompt", "only_prompt", is_flag=True,
              help="Print the plan and exit (--on-prompt is accepted too); with --json, "
                   "the plan as JSON.")
@click.option("--detailed-exitcode", is_flag=True,
              help="With --only-prompt: exit 0 when nothing would change, 4 when something "
                   "would.")
@click.option("--force", is_flag=True, help="Redeploy services whose checksum is unchanged.")
@json_result_option
@click.option("--plan-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan to FILE for `mila apply FILE`, and exit.")
@click.option("--markdown", "markdown_out", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Also write the plan as Markdown to FILE (a pull-request "
                                   "comment).")
@click.option("--disable-rollback", is_flag=True,
              help="Keep a failed stack as it is for debugging (no rollback).")
@click.option("--why", is_flag=True,
              help="Print every reason of every action below the plan (files, dependencies, "
                   "parameters, outputs, versions…).")
@click.option("--diff", "diff", is_flag=True,
              help="Show what each deploy would change, resource by resource (Add / Modify / "
                   "Remove, replacements, properties): change sets are created, described and "
                   "deleted, never executed. In --json as each action's `diff`.")
@pass_cli
def deploy_command(obj: CliContext, environment: str, services: str | None, regions: str | None,
                   concurrency: int | None, no_prompt: bool, lock_timeout: int | None,
                   only_prompt: bool, detailed_exitcode: bool, force: bool, as_json: bool,
                   plan_out: Path | None, markdown_out: Path | None,
                   disable_rollback: bool, why: bool, diff: bool) -> None:
    """Plan ENV from the code and the remote state, confirm, and deploy what changed."""
    project = obj.project()
    require_account(project, environment)
    prepared = prepare(project, environment, only=parse_services(services), force=force,
                       regions=select_regions(project.state.get_environment(environment), regions))
    human = ui.make_console(stderr=as_json)
    if diff:
        from mila.diff import describe_plan

        prepared.diffs = describe_plan(project, prepared)
    if as_json and only_prompt:
        click.echo(json.dumps(plan_to_json(prepared), indent=2))
    else:
        render_header(human, obj, prepared)
        render_plan(human, prepared, why)
        if diff:
            render_diffs(human, prepared)
    if markdown_out is not None:
        markdown_out.write_text(plan_markdown(prepared), encoding="utf-8")
    if plan_out is not None:
        plan_out.write_text(json.dumps(plan_to_json(prepared), indent=2) + "\n")
        human.print(f"plan saved to {plan_out}; apply it with `mila apply {plan_out}`",
                    markup=False)
        return
    if only_prompt:
        if detailed_exitcode and prepared.plan.has_changes:
            raise Reported(EXIT_CHANGES, "the plan has changes")
        return
    if prepared.plan.has_changes and not confirm(prepared, no_prompt, only_prompt=True):
        human.print("cancelled; nothing was deployed", markup=False)
        raise Declined("cancelled; nothing was deployed")
    run_plan(obj, prepared, concurrency, lock_timeout, disable_rollback, human,
             "deploy" if as_json else None)


@cli.command("apply")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@regions_option("Apply only the plan's actions in these regions (comma-separated).")
@deploy_options
@click.option("--disable-rollback", is_flag=True, help="Keep a failed stack as it is.")
@click.option("--worker", is_flag=True,
              help="Be one of several workers sharing this plan (a CI matrix runs the same "
                   "command N times): take each action whose dependencies are done and whose "
                   "lock is free, exit when the whole plan is done or blocked, with its result. "
                   "No confirmation.")
@json_result_option
@pass_cli
def apply_command(obj: CliContext, plan_file: Path, regions: str | None,
                  concurrency: int | None, no_prompt: bool, lock_timeout: int | None,
                  disable_rollback: bool, worker: bool, as_json: bool) -> None:
    """Apply exactly the plan saved by `mila deploy --plan-out FILE`.

    Refuses (exit 2) if the code or the state changed since the plan was made (with --worker:
    if the code changed; other workers change the state)."""
    project = obj.project()
    saved = load_plan_file(plan_file)
    project.select_environment(saved["environment"])
    require_account(project, saved["environment"])
    if regions is not None:
        env = project.state.get_environment(saved["environment"])
        saved = restrict_plan_file(saved, select_regions(env, regions) or ())
    if worker:
        prepared, work = check_plan_for_worker(project, saved)
        human = ui.make_console(stderr=as_json)
        render_header(human, obj, prepared)
        human.print(f"worker: {len(work.actions)} action(s) of {plan_file.name}, shared with "
                    f"the other workers", markup=False)
        run_plan(obj, prepared, concurrency, lock_timeout, disable_rollback, human,
                 "apply" if as_json else None, worker=work)
        return
    prepared = check_saved_plan(project, saved)
    human = ui.make_console(stderr=as_json)
    render_header(human, obj, prepared)
    render_plan(human, prepared)
    if prepared.plan.has_changes and not confirm(prepared, no_prompt):
        human.print("cancelled; nothing was deployed", markup=False)
        raise Declined("cancelled; nothing was deployed")
    run_plan(obj, prepared, concurrency, lock_timeout, disable_rollback, human,
             "apply" if as_json else None)


@cli.command("remove")
@env_option()
@services_option()
@regions_option()
@deploy_options
@click.option("--plan-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan to FILE for `mila apply FILE`, and exit.")
@json_result_option
@click.option("--force", is_flag=True,
              help="Remove even services whose outputs deployed services still consume.")
@pass_cli
def remove_command(obj: CliContext, environment: str, services: str | None, regions: str | None,
                   concurrency: int | None, no_prompt: bool, lock_timeout: int | None,
                   plan_out: Path | None, as_json: bool, force: bool) -> None:
    """Destroy deployed services of ENV (all, or -s a,b), in every region (or --region).
    Alias: destroy.

    Refuses (exit 2) to remove a service whose outputs other deployed services still read
    through their parameters, unless they are removed too or --force is given."""
    project = obj.project()
    require_account(project, environment)
    prepared = prepare_removal(project, environment, only=parse_services(services),
                               regions=select_regions(project.state.get_environment(environment),
                                                      regions), force=force)
    human = ui.make_console(stderr=as_json)
    render_header(human, obj, prepared)
    render_plan(human, prepared)
    if plan_out is not None:
        plan_out.write_text(json.dumps(plan_to_json(prepared), indent=2) + "\n")
        human.print(f"plan saved to {plan_out}", markup=False)
        return
    if prepared.plan.has_changes and not confirm(prepared, no_prompt):
        human.print("cancelled; nothing was destroyed", markup=False)
        raise Declined("cancelled; nothing was destroyed")
    run_plan(obj, prepared, concurrency, lock_timeout, False, human,
             "remove" if as_json else None)


def _alias(command: click.Command, name: str, of: str) -> click.Command:
    """A copy of ``command`` registered as ``name``, whose help names the command it aliases."""
    import copy

    alias = copy.copy(command)
    alias.name = name
    alias.help = (command.help or "").replace(f"Alias: {name}.", f"Alias of `mila {of}`.")
    alias.alias_of = command  # type: ignore[attr-defined]  # read by the docs generator
    return alias


cli.add_command(_alias(remove_command, "destroy", "remove"))


# ----------------------------------------------------------------------------- environments


@envs_group.command("destroy")
@click.argument("name")
@deploy_options
@pass_cli
def envs_destroy(obj: CliContext, name: str, concurrency: int | None, no_prompt: bool,
                 lock_timeout: int | None) -> None:
    """Destroy every service of NAME in every region, then the environment (history is kept).

    If a destroy fails, the environment and the records of what is still deployed are kept."""
    project = obj.project()
    project.select_environment(name)
    require_account(project, name)
    human = ui.make_console()
    destroy_all(obj, prepare_removal(project, name), concurrency, lock_timeout, no_prompt, human,
                kept=f"environment {name} is kept: some services are still deployed")
    destroy_environment(project.state, name)
    human.print(f"destroyed environment {name} (its history is kept)", markup=False)


def destroy_all(obj: CliContext, prepared: Prepared, concurrency: int | None, lock_timeout: int | None,
                no_prompt: bool, human: Console, kept: str) -> None:
    """Show, confirm and run a removal plan; returns only when every destroy succeeded."""
    render_header(human, obj, prepared)
    render_plan(human, prepared)
    if not prepared.plan.has_changes:
        return
    if not confirm(prepared, no_prompt):
        human.print("cancelled; nothing was destroyed", markup=False)
        raise Declined("cancelled; nothing was destroyed")
    report = execute_with_progress(obj, prepared, concurrency, lock_timeout, False, human)
    if report is not None and not report.ok:
        human.print(kept, markup=False)
        exit_for(report)
        raise Reported(EXIT_FAILED, kept)


@envs_group.command("create-replicate")
@click.argument("name")
@click.argument("region")
@deploy_options
@click.option("--no-copy", is_flag=True,
              help="Do not copy the SSM parameters and secrets the environment files reference "
                   "from the environment's first region.")
@pass_cli
def envs_create_replicate(obj: CliContext, name: str, region: str, concurrency: int | None,
                          no_prompt: bool, lock_timeout: int | None, no_copy: bool) -> None:
    """Add REGION to environment NAME and deploy every service there.

    First copies the SSM parameters and secrets that NAME's environment files reference from
    its first region into REGION (those already there are kept; --no-copy skips this). If a
    deploy fails, what was deployed in REGION is destroyed and the region removed again."""
    human = ui.make_console()

    def review(prepared: Prepared) -> bool:
        render_header(human, obj, prepared)
        render_plan(human, prepared)
        return not prepared.plan.has_changes or confirm(prepared, no_prompt)

    done = replicate_region(
        obj.project(), name, region, copy=not no_copy, review=review,
        run=lambda prepared: execute_with_progress(obj, prepared, concurrency, lock_timeout,
                                                   False, human),
        say=lambda line: human.print(line, markup=False))
    if done.ok:
        human.print(f"environment {name} now has regions {', '.join(done.environment.regions)}",
                    markup=False)
        return
    if done.report is None:
        human.print("cancelled; nothing was deployed", markup=False)
        raise Declined("cancelled; nothing was deployed")
    exit_for(done.report)


@envs_group.command("destroy-replicate")
@click.argument("name")
@click.argument("region")
@deploy_options
@pass_cli
def envs_destroy_replicate(obj: CliContext, name: str, region: str, concurrency: int | None,
                           no_prompt: bool, lock_timeout: int | None) -> None:
    """Destroy every service of NAME in REGION, then remove REGION from the environment.

    If a destroy fails, the region and the records of what is still deployed are kept."""
    project = obj.project()
    project.select_environment(name)
    require_account(project, name)
    _, region = removable_region(project.state, name, region)  # before anything is destroyed
    human = ui.make_console()
    destroy_all(obj, prepare_removal(project, name, regions={region}), concurrency, lock_timeout,
                no_prompt, human,
                kept=f"{region} is kept in {name}: some services are still deployed there")
    env = remove_region(project.state, name, region)
    human.print(f"environment {name} now has regions {', '.join(env.regions)}", markup=False)
