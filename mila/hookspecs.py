"""Every hook mila calls, in the order they fire during a deploy.

Each docstring is the reference documentation of its hook. Hooks are called with keyword
arguments: an implementation may accept only the parameters it needs, so adding a parameter
later breaks no plugin. Implement a hook with ``@mila.hookimpl`` in a module registered through
an entry point in the group ``mila`` (see ``docs/plugins.md``).

Registration hooks (``mila_hashers``, ``mila_state_backends``, ``mila_deployers``,
``mila_reference_resolvers``, ``mila_commands``) return a list of small frozen objects; the core
validates them, refuses duplicates with an error naming the plugin, and owns their lifecycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from mila.config import ProjectConfig
    from mila.model import Action, Identity, Plan, Record, Status, Workspace
    from mila.project import Project
    from mila.protocols import (
        DeployerType,
        HasherType,
        ReferenceResolverType,
        StateBackendType,
    )

hookspec = pluggy.HookspecMarker("mila")


# ----------------------------------------------------------------- registration (start-up)


@hookspec
def mila_hashers() -> Sequence[HasherType]:
    """Register hashers: return a list of :class:`mila.protocols.HasherType`.

    The first hasher whose ``applies(root)`` is true, in ``priority`` order, enumerates and
    digests the project's files. Built-ins: ``git`` (priority 10, needs a git work tree) and
    ``fs`` (priority 1000, any folder). A digest is the file's identity, what packaging ships
    (content, executable bit, a symlink's target and what it reaches): the same tree gets the
    same digests from every hasher (see :class:`mila.protocols.Hasher`).
    """


@hookspec
def mila_state_backends() -> Sequence[StateBackendType]:
    """Register state backends: return a list of :class:`mila.protocols.StateBackendType`.

    ``[state].backend`` in ``mila.toml`` chooses one by name. Built-ins: ``aws`` (DynamoDB + S3)
    and ``local`` (SQLite under ``.mila/``).
    """


@hookspec
def mila_deployers() -> Sequence[DeployerType]:
    """Register deployers: return a list of :class:`mila.protocols.DeployerType`.

    A workspace is a service when its ``[service].deployer`` names one, or when a deployer's
    ``detect`` recognises the folder. Built-ins: ``sam`` and ``cloudformation``.
    """


@hookspec
def mila_reference_resolvers() -> Sequence[ReferenceResolverType]:
    """Register reference kinds: return a list of :class:`mila.protocols.ReferenceResolverType`.

    A value ``${<kind>:<target>}`` in an environment file (``envs/.env*``) is looked up by the
    resolver registered under ``<kind>``: at plan time ``describe(target, region)`` checks it
    exists and returns its version (folded into the checksum; a missing one refuses the plan,
    exit 2); at deploy time a deployer either hands the cloud the version's
    ``dynamic_reference`` or reads ``value(target, region, version)``. Values are never stored
    or logged. Built-ins (plugin ``aws``): ``ssm`` (SSM Parameter Store) and ``secret``
    (Secrets Manager, ``${secret:name}`` or ``${secret:name:json-key}``). ``env`` is reserved.
    """


@hookspec
def mila_commands() -> Sequence[click.Command]:
    """Add CLI commands: return a list of :class:`click.Command` (or groups).

    The core adds them to ``mila``; a name that already exists is refused with an error naming
    the plugin (a plugin cannot replace ``deploy``). The sandbox plugin adds ``mila sandbox``.
    """


# ----------------------------------------------------------------- planning


@hookspec
def mila_environment_selected(config: ProjectConfig, environment: str) -> None:
    """Called once a command knows the environment it acts on (``-e``, a plan file's), before
    it asks for the identity or calls the cloud for that environment.

    The ``aws`` plugin assumes ``[environments.<name>].role_arn`` here, so every AWS call that
    follows (state, deploys, references, logs) and the ``[accounts]`` check use that role.
    """


@hookspec(firstresult=True)
def mila_identity(config: ProjectConfig) -> Identity | None:
    """Return the cloud identity this run will use, or ``None`` if this plugin has none.

    First result wins. Printed above every plan and prompt, and checked against
    ``[accounts]``. The ``aws`` plugin answers with ``sts:GetCallerIdentity`` and, when the
    sandbox is targeted, refuses any account but the sandbox's.
    """


@hookspec
def mila_checksum_inputs(
    service: Workspace, environment: str, region: str
) -> Mapping[str, str] | None:
    """Return extra named inputs to fold into ``service``'s checksum in ``environment`` and
    ``region`` (e.g. a parameter read from outside the repository, a toolchain version).

    Values are hashed, never stored: the manifest keeps each input's name and the sha256 of its
    value, so a secret can be an input. Names are namespaced by the plugin's name in the
    manifest. Return ``None`` or ``{}`` to add nothing.
    """


@hookspec(firstresult=True)
def mila_detect_change(
    service: Workspace, environment: str, region: str, current: str, previous: Record | None
) -> str | None:
    """Override the default decision for one service and region; first non-``None`` wins.

    ``current`` is the service's checksum now; ``previous`` the deployment record (``None`` if
    never deployed). Return ``"deploy"`` to force a deploy, ``"no_changes"`` to skip, or
    ``None`` to keep the default rule (same checksum and last action succeeded → no changes).
    ``first_deploy`` and ``destroy`` cannot be overridden.
    """


@hookspec
def mila_plan_ready(plan: Plan, project: Project) -> Sequence[str] | None:
    """Inspect a plan before it is shown; return reasons to refuse it (policy checks).

    Any non-empty list vetoes the plan: mila prints each reason, naming the plugin, and exits
    with code 2 without deploying anything. Return ``None`` or ``[]`` to accept.
    ``project`` is the :class:`mila.api.Project` being planned (its ``config``, ``root``,
    ``graph``; see ``mila.api``): declare it only if you need it.
    """


# ----------------------------------------------------------------- running


@hookspec
def mila_action_started(action: Action, project: Project) -> None:
    """Called in the action's worker thread just before its deployer runs (after the lock is
    taken). For notifications and metrics; an exception here fails the action.

    ``project`` is the :class:`mila.api.Project` being deployed (e.g. ``project.config.name``
    for a notification); declare it only if you need it."""


@hookspec
def mila_action_finished(action: Action, status: Status, result: Any, error: str | None,
                         project: Project) -> None:
    """Called after each action, whatever its outcome (``status`` ``succeeded``, ``failed``,
    ``skipped`` or ``cancelled``); ``result`` is the :class:`DeployResult` on success, ``error``
    the message on failure, ``project`` the :class:`mila.api.Project` being deployed.
    Exceptions here are logged, never fail the run."""


# ----------------------------------------------------------------- after a deploy


@hookspec(firstresult=True)
def mila_function_logs(record: Record, function: str, since_ms: int, follow: bool,
                       write: Callable[[str], None]) -> bool | None:
    """Print the runtime logs of ``function`` of a deployed service (``mila logs --function``).

    ``record`` is the service's record in one region (its ``stack_name``, ``region``,
    ``deployer``); ``function`` a logical id in that stack or a function name. Call ``write``
    once per log line, from ``since_ms`` (milliseconds since the epoch) on; with ``follow``,
    keep polling for new lines until interrupted (``KeyboardInterrupt``). Return ``True`` when
    handled; first result wins. The ``aws`` plugin reads CloudWatch Logs (``FilterLogEvents``).
    """
