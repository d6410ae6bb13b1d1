"""Environments and their regions: the rules behind ``mila init``, ``mila envs`` and
``mila release-lock``, kept out of the click callbacks so the deploy flow can reuse them.

Every function takes a :class:`StateBackend` (and, where it matters, the configuration) and
raises :class:`MilaError`s written for the user.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mila.config import ProjectConfig, check_region
from mila.errors import LockHeld, MilaError, StateError
from mila.locks import current_user, describe_holder, is_fresh, last_heartbeat
from mila.model import Environment, Identity, Lock, Record
from mila.protocols import StateBackend

if TYPE_CHECKING:
    from mila.deploy import Prepared
    from mila.orchestrator import RunReport
    from mila.project import Project

ENV_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
MAX_ENV_NAME = 32


def operator() -> str:
    """Who is acting, for ``created_by`` and ``deployed_by``: ``user@host``."""
    return f"{current_user()}@{socket.gethostname()}"


def check_environment_name(name: str) -> str:
    """Lowercase letters, digits and dashes, at most 32 characters, no leading/trailing dash."""
    if not ENV_NAME_RE.match(name or ""):
        why = "it is longer than 32 characters" if len(name) > MAX_ENV_NAME else \
            "use lowercase letters, digits and dashes (not first or last)"
        raise MilaError(f"invalid environment name '{name}': {why}",
                        hint="for example: dev, staging, pr-123")
    return name


def parse_regions(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"eu-west-1, us-east-1"`` → a tuple of checked regions, order kept, duplicates dropped."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    regions: list[str] = []
    for part in (p.strip() for p in parts):
        if part and part not in regions:
            regions.append(check_region(part, key="--regions"))
    if not regions:
        raise MilaError("no region given", hint="name at least one, comma-separated: eu-west-1,us-east-1")
    return tuple(regions)


def check_account(config: ProjectConfig, identity: Identity | None,
                  environment: str | None = None) -> None:
    """Refuse to run in an account ``[accounts]`` does not allow.

    With ``environment``: the account configured for it (if any) must match. Without (``mila
    init``): the identity's account must be one of the configured accounts.
    """
    if not config.accounts:
        return
    if identity is None:
        raise MilaError("no AWS identity found, but [accounts] requires one",
                        hint="log in (aws sso login, AWS_PROFILE or access keys)")
    if environment is not None:
        account = config.account_for(environment)
        if account is not None and account.id != identity.account:
            raise MilaError(f"environment '{environment}' belongs to account {account.id} "
                            f"([accounts.{account.alias}]): it must be deployed from account "
                            f"{account.id} ({account.alias}), but the current identity is in "
                            f"account {identity.account} ({identity.arn}); refusing",
                            hint="switch AWS credentials (AWS_PROFILE, SSO) to that account")
        return
    allowed = {a.id: a.alias for a in config.accounts}
    if identity.account not in allowed:
        shown = ", ".join(f"{i} ({a})" for i, a in allowed.items())
        raise MilaError(f"the current identity is in account {identity.account} "
                        f"({identity.arn}), which is not one of the accounts in [accounts]: "
                        f"{shown}; refusing",
                        hint="switch AWS credentials (AWS_PROFILE) to one of those accounts")


def create_environment(state: StateBackend, name: str, regions: Sequence[str]) -> Environment:
    check_environment_name(name)
    return state.create_environment(name, parse_regions(regions), created_by=operator())


@dataclass(frozen=True)
class EnvironmentView:
    """What ``mila envs describe`` shows: the environment, its records and its locks."""

    environment: Environment
    records: tuple[Record, ...]
    locks: tuple[Lock, ...]


def describe_environment(state: StateBackend, name: str) -> EnvironmentView:
    env = state.get_environment(name)
    return EnvironmentView(env, tuple(state.records(name)), tuple(state.locks(name)))


def destroy_environment(state: StateBackend, name: str) -> None:
    """Delete an environment with no deployed service; refuses (naming them) otherwise."""
    records = state.records(name)
    if records:
        raise StateError(_still_deployed(name, records, None),
                         hint=f"remove them first with `mila remove -e {name}`")
    state.delete_environment(name)


def add_region(state: StateBackend, name: str, region: str) -> Environment:
    """Add a replica region to an environment (state side; deploys are the deploy flow's)."""
    (region,) = parse_regions(region)
    env = state.get_environment(name)
    if region in env.regions:
        raise MilaError(f"environment '{name}' already has region {region}",
                        hint=f"its regions: {', '.join(env.regions)}")
    return state.set_regions(name, (*env.regions, region))


def removable_region(state: StateBackend, name: str, region: str) -> tuple[Environment, str]:
    """The environment and the region, if ``region`` is one of its regions and not its only
    one (checked before anything is destroyed)."""
    (region,) = parse_regions(region)
    env = state.get_environment(name)
    if region not in env.regions:
        raise MilaError(f"environment '{name}' has no region {region}",
                        hint=f"its regions: {', '.join(env.regions)}")
    if len(env.regions) == 1:
        raise MilaError(f"{region} is the only region of environment '{name}'",
                        hint=f"destroy the environment instead: `mila envs destroy {name}`")
    return env, region


def remove_region(state: StateBackend, name: str, region: str) -> Environment:
    """Remove a replica region; refuses while services are deployed there or for the last one."""
    env, region = removable_region(state, name, region)
    deployed = [r for r in state.records(name) if r.region == region]
    if deployed:
        raise StateError(_still_deployed(name, deployed, region),
                         hint=f"destroy them and the region with `mila envs destroy-replicate "
                              f"{name} {region}`")
    return state.set_regions(name, tuple(r for r in env.regions if r != region))


@dataclass(frozen=True)
class Replicated:
    """What :func:`replicate_region` did: ``report`` is the deploy's (``None`` when the plan was
    declined, or had nothing to do when ``accepted``); unless ``ok``, the region was rolled
    back (or kept, when its stacks could not all be destroyed)."""

    environment: Environment
    accepted: bool
    report: RunReport | None

    @property
    def ok(self) -> bool:
        return self.accepted and (self.report is None or self.report.ok)


def replicate_region(project: Project, name: str, region: str, *, copy: bool,
                     review: Callable[[Prepared], bool],
                     run: Callable[[Prepared], RunReport | None],
                     say: Callable[[str], None]) -> Replicated:
    """``mila envs create-replicate``, as one transaction: check the references to copy (before
    any write), add ``region`` to environment ``name``, copy the references (unless not
    ``copy``), plan the deploy of every service there, ``review`` the plan (show it and, when
    it has changes, confirm: false declines), ``run`` it. When anything before the run fails,
    the region is removed again; when the run fails or the plan is declined, what reached the
    region is destroyed (``run`` again, with a removal plan) and the region removed, or kept
    when a destroy failed."""
    from mila.deploy import prepare, prepare_removal

    project.select_environment(name)
    require_account(project, name)
    copying = _references_copier(project, name, region) if copy else None
    env = add_region(project.state, name, region)
    region = env.regions[-1]
    try:
        for copied in copying() if copying is not None else ():
            say(copied)
        prepared = prepare(project, name, regions={region})
        accepted = review(prepared)
    except BaseException:
        remove_region(project.state, name, region)
        raise
    done = Replicated(env, accepted, run(prepared) if accepted else None)
    if done.ok:
        return done
    say(f"rolling back: removing {region} from {name}")
    undo = run(prepare_removal(project, name, regions={region}))
    if undo is None or undo.ok:
        remove_region(project.state, name, region)
    else:
        say(f"{region} is kept in {name}: some of its stacks could not be destroyed; "
            f"retry with `mila envs destroy-replicate {name} {region}`")
    return done


def _references_copier(project: Project, name: str, region: str) -> Callable[[], list[str]]:
    """Check (before anything is written) that the references to copy exist in ``name``'s
    first region; returns what copies them into ``region`` (a line per reference copied)."""
    from mila.variables import VariableResolver, copy_references, references_to_copy

    (region,) = parse_regions(region)
    source = project.state.get_environment(name).regions[0]
    resolver = VariableResolver(project)
    services = [s for s in project.graph.services if s.regions is None or region in s.regions]
    refs = references_to_copy(resolver, services, name, source)

    def copy() -> list[str]:
        return [f"copied    {copied} from {source} to {region}"
                for copied in copy_references(resolver, refs, source, region)]

    return copy


def _still_deployed(name: str, records: Sequence[Record], region: str | None) -> str:
    shown = ", ".join(f"{r.service} ({r.region})" for r in records[:5])
    more = f" and {len(records) - 5} more" if len(records) > 5 else ""
    where = f"environment '{name}'" + (f" in {region}" if region else "")
    return f"{where} still has {len(records)} deployed service(s): {shown}{more}"


def require_account(project: Any, environment: str | None) -> None:
    """``[accounts]``: refuse before any state read or write when the identity is in the wrong
    account (asks for the identity only when ``[accounts]`` is set). Every command that
    changes an environment calls it first (the deploy flow included)."""
    if project.config.accounts:
        check_account(project.config, project.identity(), environment)


def matching_locks(state: StateBackend, name: str, services: Sequence[str] | None) -> list[Lock]:
    """The locks of an environment, narrowed to ``services`` (unknown names are an error)."""
    locks = state.locks(name)
    if not services:
        return locks
    unknown = [s for s in services if s not in {lk.service for lk in locks}]
    if unknown:
        held = sorted({lk.service for lk in locks})
        raise MilaError(f"no lock held on {', '.join(unknown)} in environment '{name}'",
                        hint=f"locked services: {', '.join(held)}" if held else "nothing is locked")
    return [lk for lk in locks if lk.service in services]


def refuse_live_locks(locks: Iterable[Lock], lease: timedelta) -> None:
    """``release-lock`` without ``--force``: refuse locks whose holder still heartbeats."""
    from mila.model import utcnow

    live = [lk for lk in locks if is_fresh(lk, lease)]
    if live:
        shown = "; ".join(
            f"{lk.service} in {lk.region}: {describe_holder(lk)}, last heartbeat "
            f"{max((utcnow() - last_heartbeat(lk, lease)).total_seconds(), 0):.0f} s ago"
            for lk in live)
        error = LockHeld(live[0], f"refusing to release {len(live)} live lock(s), whose run "
                                  f"still renews them: {shown}")
        error.hint = "wait for that run, or pass --force to release anyway (it then stops " \
                     "and records 'lock lost')"
        raise error


def force_release(state: StateBackend, locks: Iterable[Lock]) -> list[Lock]:
    """Remove each lock, whoever holds it; returns those that were still there."""
    return [lk for lk in locks if state.force_release(lk.environment, lk.service, lk.region)]
