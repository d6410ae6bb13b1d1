"""The values that cross plugin boundaries.

Every object a plugin receives from the core, or hands back to it, is defined here as a frozen
dataclass with slots: a plugin can read them but never corrupt the core's view of the world.
These records are a public contract: state backends persist them, deployers receive and return
them, and ``--json`` outputs are derived from them. Add fields with defaults; never rename.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (every timestamp mila stores is UTC)."""
    return datetime.now(timezone.utc)


def frozen_mapping(data: Mapping[K, V] | None = None) -> Mapping[K, V]:
    """A read-only view of a copy of ``data``, for mapping fields of frozen records."""
    return MappingProxyType(dict(data or {}))


class ActionKind(str, enum.Enum):
    """What the plan does for one service in one region."""

    FIRST_DEPLOY = "first_deploy"  #: no successful deployment recorded yet
    DEPLOY = "deploy"  #: deployed before, but its checksum changed (or --force, or last run failed)
    NO_CHANGES = "no_changes"  #: same checksum as the last successful deployment
    DESTROY = "destroy"  #: recorded, but the service or the region left the codebase/environment

    @property
    def changes(self) -> bool:
        """Whether carrying out this action changes anything in AWS."""
        return self is not ActionKind.NO_CHANGES


class Status(str, enum.Enum):
    """Outcome of the last action on a deployment record, or of one action in a run."""

    IN_PROGRESS = "in_progress"  #: started and not finished (a crash leaves this; next plan redeploys)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  #: not run: an action it depends on failed, or another run already did it
    CANCELLED = "cancelled"
    #: history only: an attempt whose run died (killed, lost its lease); written by the run that
    #: took the expired lock over
    INTERRUPTED = "interrupted"


class WorkspaceKind(str, enum.Enum):
    """What a workspace is: deployed (``service``) or shared code (``package``)."""

    SERVICE = "service"
    PACKAGE = "package"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Workspace:
    """A folder of the monorepo matched by ``[project].workspaces``.

    ``kind`` is :attr:`WorkspaceKind.SERVICE` when the folder's ``mila.toml`` has a
    ``[service]`` table or a deployer plugin detects it, else :attr:`WorkspaceKind.PACKAGE`
    (shared code that services depend on). It is a ``str`` enum: ``kind == "service"`` holds.
    ``path`` is relative to the project root, POSIX separators, never absolute.
    """

    name: str
    path: str
    kind: WorkspaceKind
    depends_on: tuple[str, ...] = ()
    src: tuple[str, ...] = ()  # globs relative to the workspace; () means the whole folder
    deployer: str | None = None
    template: str | None = None
    regions: tuple[str, ...] | None = None  # overrides the environment's regions
    parameters: Mapping[str, str] = field(default_factory=frozen_mapping)
    timeout_minutes: int = 60
    #: the whole ``[service]`` table as written (deployer-specific keys included)
    settings: Mapping[str, Any] = field(default_factory=frozen_mapping)
    #: project-relative path of the mila.toml that declared it, for error messages
    config_file: str | None = None

    def __post_init__(self) -> None:
        # accept the plain strings ("service", "package") plugins and tests have always passed
        object.__setattr__(self, "kind", WorkspaceKind(self.kind))

    @property
    def is_service(self) -> bool:
        return self.kind is WorkspaceKind.SERVICE


@dataclass(frozen=True, slots=True)
class Environment:
    """A registered environment (``dev``, ``prod``…) and its regions (replicas)."""

    name: str
    regions: tuple[str, ...]
    created_at: datetime | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """The current deployment of one service in one region of one environment.

    ``checksum`` is the checksum of the last *successful* deployment (``None`` if none ever
    succeeded); ``status`` is the outcome of the last action. A deploy marks the record
    ``in_progress`` before it starts and ``succeeded``/``failed`` when it ends, so a crash never
    leaves a checksum that was not really deployed. ``deployer``, ``stack_name`` and ``region``
    are enough to destroy the service even after its code is gone.
    """

    environment: str
    service: str
    region: str
    checksum: str | None
    status: Status
    deployer: str
    stack_name: str | None = None
    outputs: Mapping[str, str] = field(default_factory=frozen_mapping)
    commit: str | None = None
    deployed_by: str | None = None
    deployed_at: datetime | None = None
    duration_seconds: float | None = None
    manifest_key: str | None = None
    message: str | None = None  # last failure reason, for `mila envs describe`
    #: services it depended on when deployed: orders its destroy after its dependents' even
    #: once its code is gone
    depends_on: tuple[str, ...] = ()
    #: how many times this record was written. ``put_record`` of a record with ``version`` N > 0
    #: lands only if the stored record has version N - 1 (no record counts as 0): a run writes
    #: the version after the one it read, so it never overwrites a newer record. 0 (records from
    #: older mila versions) writes unconditionally.
    version: int = 0
    #: who started the attempt ``status`` describes, and when (set with ``in_progress``; shown
    #: in the ``interrupted`` history row when that run dies)
    started_by: str | None = None
    started_at: datetime | None = None
    #: the ``DeployResult.data`` of the last successful deploy (the deployer's own, opaque)
    data: Mapping[str, Any] = field(default_factory=frozen_mapping)


@dataclass(frozen=True, slots=True)
class LockOwner:
    """Who takes a lock: shown to whoever finds it held."""

    owner_id: str  # unique per run (uuid); release/heartbeat are conditional on it
    user: str
    host: str
    pid: int
    ci_job: str | None = None


@dataclass(frozen=True, slots=True)
class Lock:
    """A lease on (environment, service, region), held by ``owner`` until ``expires_at``."""

    environment: str
    service: str
    region: str
    owner: LockOwner
    acquired_at: datetime
    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires_at


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row per action carried out, kept forever (``mila history``)."""

    environment: str
    service: str
    region: str
    action: ActionKind
    status: Status
    checksum: str | None
    at: datetime
    by: str | None = None
    commit: str | None = None
    duration_seconds: float | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """One cell of the plan: what to do for ``service`` in ``region``.

    For ``destroy`` actions the service may no longer exist in the codebase: ``deployer`` and
    ``stack_name`` then come from the record, which is why records keep them.
    """

    environment: str
    service: str
    region: str
    kind: ActionKind
    checksum: str | None
    previous_checksum: str | None
    deployer: str
    stack_name: str | None = None
    reason: str = ""  # why this kind was chosen, one short phrase
    #: every reason, most telling first: files added/modified/removed (first few paths),
    #: dependency X changed, parameter P changed, deployer version changed, forced, failed
    #: last time, region added… (from the stored manifest against the current one)
    reasons: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.region)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a run will do, in a form that can be shown, saved and applied later.

    ``edges`` maps an action key to the keys it must wait for (deploys after their
    dependencies in the same region; destroys in reverse, after all deploys).
    """

    environment: str
    regions: tuple[str, ...]
    actions: tuple[Action, ...]
    edges: Mapping[tuple[str, str], tuple[tuple[str, str], ...]] = field(
        default_factory=frozen_mapping
    )
    created_at: datetime | None = None

    @property
    def has_changes(self) -> bool:
        return any(a.kind.changes for a in self.actions)

    def columns(self) -> list[str]:
        """The regions to show as columns: the environment's, then any other a destroy row
        names (a region that left the environment)."""
        regions = list(self.regions)
        for a in self.actions:
            if a.region not in regions:
                regions.append(a.region)
        return regions

    def count(self, *kinds: ActionKind) -> int:
        return sum(1 for a in self.actions if a.kind in kinds)


@dataclass(frozen=True, slots=True)
class DeployResult:
    """What a deployer returns for one action.

    A deployer signals failure by raising :class:`mila.errors.DeployError` (message for the
    user, optional details); ``DeployResult`` is for success, including "nothing to do".
    """

    stack_name: str | None = None
    stack_id: str | None = None
    outputs: Mapping[str, str] = field(default_factory=frozen_mapping)
    changed: bool = True  # False when the deployer found nothing to change (empty change set)
    message: str = ""
    #: the deployer's own data for this service, opaque to mila: a JSON-serialisable mapping
    #: (string keys; strings, numbers, booleans, null, lists, objects; at most 16 KiB as JSON).
    #: Stored with the record on a successful deploy (replacing the previous data) and handed
    #: back in ``DeployContext.data`` on the next deploy and on destroy, even once the
    #: service's code is gone. Never put a secret in it: records are printed by ``--json``.
    data: Mapping[str, Any] = field(default_factory=frozen_mapping)


@dataclass(frozen=True, slots=True)
class Identity:
    """The cloud identity a run uses; printed above every plan and prompt."""

    account: str
    arn: str
    source: str = ""  # e.g. "sandbox http://127.0.0.1:4566" or "profile dev"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found at plan time, before anything runs (a deployer's ``validate``, or
    the core's own checks).

    ``severity`` ``"error"`` refuses the whole plan (exit 2, nothing locked or written);
    ``"warning"`` is shown with the plan. ``file`` is relative to the project root and ``line``
    1-based, when known; ``rule`` names the check (``E3002`` for a cfn-lint rule).
    """

    message: str
    severity: str = "error"  # "error" | "warning"
    file: str | None = None
    line: int | None = None
    rule: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file or ""
        rule = f"[{self.rule}] " if self.rule else ""
        return f"{where}: {rule}{self.message}" if where else f"{rule}{self.message}"


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One resource a deploy would change (a deployer's optional ``describe_changes``).

    ``action`` is CloudFormation's: ``Add``, ``Modify``, ``Remove`` (``Import``, ``Dynamic``);
    ``replacement`` (``Modify`` only) ``"True"``, ``"False"`` or ``"Conditional"``: whether the
    resource is recreated (a new physical id, a new ARN); ``properties`` the names of the
    properties that change.
    """

    action: str
    logical_id: str
    resource_type: str = ""
    replacement: str | None = None
    properties: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.action} {self.logical_id}" + \
            (f" ({self.resource_type})" if self.resource_type else "")
        if self.replacement in ("True", "Conditional"):
            text += " REPLACED" if self.replacement == "True" else " may be replaced"
        if self.properties:
            text += f": {', '.join(self.properties)}"
        return text
