"""What plugins implement: the ``Hasher``, ``StateBackend`` and ``Deployer`` protocols, and the
small registration objects the ``mila_hashers``/``mila_state_backends``/``mila_deployers`` hooks
return.

These are the contracts between the core and its plugins. The core never imports a plugin; a
plugin never receives a mutable core object. The contract test suites in
:mod:`mila.testing.contracts` check an implementation against these documents.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable

from mila.model import (
    Action,
    DeployResult,
    Environment,
    Finding,
    HistoryEntry,
    Lock,
    LockOwner,
    Record,
    ResourceChange,
    Workspace,
    frozen_mapping,
)

if TYPE_CHECKING:
    from mila.config import ProjectConfig


# --------------------------------------------------------------------------- hashing


@runtime_checkable
class Hasher(Protocol):
    """Enumerates a project's input files and gives each a content digest.

    ``file_digests(root)`` returns ``{relative posix path: digest}`` for every file that can
    influence a deployment: files ignored by the VCS are left out. A digest is the file's
    *identity*, what packaging ships, so every hasher gives the same map for the same tree:

    * a regular file: the git blob id of its working-tree bytes
      (``sha1(b"blob <size>\\0" + content)``; the bytes on disk even where ``.gitattributes``
      or ``core.autocrlf`` make git store others), prefixed ``100755:`` when its owner's execute
      bit is set;
    * a symlink: ``120000:`` and the blob id of its target path, then, when the target reaches
      a file or folder of the project, ``:`` and that file's digest or ``tree:`` and the sha1 of
      the folder's listing; a target leaving the project is an error (a ``MilaError``);
    * a submodule or nested repository: its commit id.

    Any file name is hashed as itself (non-UTF-8 bytes as ``surrogateescape`` characters). One
    call enumerates the whole repository (never one per workspace).
    """

    name: str

    def file_digests(self, root: Path) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class HasherType:
    """Registration of a hasher.

    ``applies(root)`` says whether it can hash this project (the ``git`` hasher needs a work
    tree); the first applicable hasher in ``priority`` order (lower first) is used.
    """

    name: str
    create: Callable[[ProjectConfig], Hasher]
    applies: Callable[[Path], bool] = lambda root: True
    priority: int = 100


# --------------------------------------------------------------------------- state


@runtime_checkable
class StateBackend(Protocol):
    """Where mila keeps its memory: environments, deployment records, locks, history, manifests.

    Guarantees every backend must give (checked by ``mila.testing.contracts``):

    * No record is ever lost or half-written: each method is atomic.
    * ``acquire_lock`` is atomic: of many concurrent callers exactly one gets a free lock. An
      expired lease may be taken over, atomically and conditional on the old lease.
    * ``heartbeat``, ``release``, ``put_record`` and ``delete_record`` are conditional on the
      caller still holding the lock (same ``owner_id``, not expired); else :class:`LockLost`.
    * ``records(env)`` reads all records of an environment in as few calls as the store allows.
    * ``put_record`` of a record whose ``version`` is N > 0 lands only if the stored record has
      version N - 1 (no record: 0); else :class:`RecordChanged`, nothing written. A run writes
      the version after the one it read, so it never overwrites a newer record.
    * Optional: ``get_record(env, service, region) -> Record | None`` reads one record, strongly
      consistent (a deploy re-reads its record after taking the lock). Without it
      :func:`read_record` falls back to ``records(env)``.
    * Optional: ``put_record_with_history(record, entry, lock)`` is ``put_record`` and
      ``append_history`` as one atomic write (the same conditions as ``put_record``; when they
      fail, neither is written): an action's end is one call instead of two. Without it
      :func:`record_with_history` makes the two calls.
    * Methods on an environment that does not exist raise :class:`EnvironmentNotFound`; any
      method on a state that was never initialised raises :class:`StateNotInitialized`.
    """

    name: str

    def location(self) -> str:
        """Where the state lives, for humans (``dynamodb:shop-mila-state + s3://…``)."""
        ...

    def init(self) -> list[str]:
        """Create the state's storage; idempotent. Returns what was created (empty: nothing)."""
        ...

    # environments
    def create_environment(self, name: str, regions: Iterable[str], created_by: str) -> Environment: ...
    def get_environment(self, name: str) -> Environment: ...
    def list_environments(self) -> list[Environment]: ...
    def set_regions(self, name: str, regions: Iterable[str]) -> Environment: ...
    def delete_environment(self, name: str) -> None:
        """Delete an environment; raises :class:`StateError` while it still has records."""
        ...

    # deployment records
    def records(self, environment: str) -> list[Record]: ...
    def put_record(self, record: Record, lock: Lock) -> None: ...
    def delete_record(self, environment: str, service: str, region: str, lock: Lock) -> None: ...

    # history
    def append_history(self, entry: HistoryEntry) -> None: ...
    def history(self, environment: str, service: str | None = None,
                limit: int | None = None) -> list[HistoryEntry]:
        """Newest first."""
        ...

    # locks
    def acquire_lock(self, environment: str, service: str, region: str, owner: LockOwner,
                     ttl: timedelta) -> Lock:
        """Take the lock or raise :class:`LockHeld` (with the holder) at once; never waits."""
        ...

    def heartbeat(self, lock: Lock, ttl: timedelta) -> Lock: ...
    def release(self, lock: Lock) -> None: ...
    def locks(self, environment: str) -> list[Lock]: ...
    def force_release(self, environment: str, service: str, region: str) -> bool:
        """Remove a lock whoever holds it; True if there was one."""
        ...

    # manifests (per-file checksum manifests, to explain why a checksum changed)
    def put_manifest(self, environment: str, service: str, region: str,
                     manifest: Mapping[str, Any]) -> str:
        """Store the manifest; returns its key (stored in the record)."""
        ...

    def get_manifest(self, environment: str, service: str, region: str) -> Mapping[str, Any] | None: ...


def record_with_history(state: StateBackend, record: Record, entry: HistoryEntry,
                        lock: Lock) -> None:
    """Write ``record`` (as ``put_record``) and append ``entry``: in one atomic call with the
    backend's optional ``put_record_with_history``, else ``put_record`` then
    ``append_history``."""
    both = getattr(state, "put_record_with_history", None)
    if callable(both):
        both(record, entry, lock)
        return
    state.put_record(record, lock)
    state.append_history(entry)


def read_record(state: StateBackend, environment: str, service: str,
                region: str) -> Record | None:
    """One record, read now: the backend's optional ``get_record``, else ``records(env)``."""
    get = getattr(state, "get_record", None)
    if callable(get):
        found: Record | None = get(environment, service, region)
        return found
    return next((r for r in state.records(environment)
                 if (r.service, r.region) == (service, region)), None)


@dataclass(frozen=True, slots=True)
class StateBackendType:
    """Registration of a state backend, chosen by ``[state].backend``.

    ``config_keys`` are the extra keys the backend accepts in ``[state]`` (besides ``backend``);
    any other key is a configuration error.
    """

    name: str
    create: Callable[[ProjectConfig], StateBackend]
    config_keys: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- deploying


@dataclass(frozen=True, slots=True)
class DeployContext:
    """Everything a deployer gets besides the action.

    ``report(phase, message)`` updates the progress line (never print); ``log`` is the action's
    log file; ``cancel`` is set on Ctrl-C (a deployer should stop waiting and, where the cloud
    allows, cancel what it started). ``dependency_outputs`` maps each service this one depends on
    to its recorded outputs in the same environment and region. ``variables`` and
    ``resolved_variables`` are the service's environment variables (``docs/configuration.md``,
    "Environment files"): a deployer delivers them to what it deploys (the CloudFormation
    deployer to every Lambda function, the shell deployer to its commands' environment).
    """

    project: str
    environment: Environment
    region: str
    workspace: Workspace | None  # None for destroying a service whose code is gone
    root: Path
    parameters: Mapping[str, str] = field(default_factory=frozen_mapping)
    dependency_outputs: Mapping[str, Mapping[str, str]] = field(default_factory=frozen_mapping)
    report: Callable[[str, str], None] = lambda phase, message: None
    log: TextIO | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    options: Mapping[str, Any] = field(default_factory=frozen_mapping)  # e.g. disable_rollback
    #: the service's environment variables by name, values resolved in ``region`` (a secret's
    #: value is read only when a deployer reads it), plus ``AWS_REGION`` and ``MILA_ENV``
    variables: Mapping[str, str] = field(default_factory=frozen_mapping)
    #: the variables of the service's environment files (no ``AWS_REGION``/``MILA_ENV``), each a
    #: :class:`mila.variables.ResolvedVariable` saying where it comes from and which references
    #: it holds, so a deployer can hand the cloud a reference instead of a value
    resolved_variables: Mapping[str, Any] = field(default_factory=frozen_mapping)
    #: every workspace *package* the service depends on (transitively): name -> its folder,
    #: relative to ``root``; a deployer that builds bundles them from this local source
    packages: Mapping[str, str] = field(default_factory=frozen_mapping)
    #: the deployer's own data from the service's record: the ``DeployResult.data`` of the
    #: last successful deploy (``{}`` before the first one, or from a deployer that keeps
    #: none). Given on deploy and destroy alike, so a destroy can find what a deploy made even
    #: when ``workspace`` is ``None``
    data: Mapping[str, Any] = field(default_factory=frozen_mapping)


@runtime_checkable
class Deployer(Protocol):
    """Carries out actions in the cloud.

    ``deploy`` makes the service's stack match its code and returns a :class:`DeployResult`;
    ``destroy`` removes it (already gone is success). ``action.stack_name`` is the name the
    record holds; it is ``None`` when no deploy of the service ever succeeded (a failed first
    create), and the deployer then derives the name exactly as ``deploy`` did. Both raise
    :class:`DeployError` on failure, with a message for the user. A deployer reports progress through
    ``context.report`` and writes details to ``context.log``; it never prints.

    What a deployer must remember about a service for later (a bucket key, a resource id, the
    destroy command) goes in ``DeployResult.data``: mila stores it with the record and hands it
    back as ``context.data``, opaque, on the next deploy and on destroy.
    """

    name: str
    version: str

    def deploy(self, action: Action, context: DeployContext) -> DeployResult: ...
    def destroy(self, action: Action, context: DeployContext) -> DeployResult: ...


@runtime_checkable
class ValidatingDeployer(Protocol):
    """Optional member of a :class:`Deployer`: ``validate``, called at plan time.

    The core calls it (only when the deployer has it) once per service to be deployed, before
    any lock or state write, with ``context.region`` the first region the service is planned in
    and ``context.environment.regions`` every region it is planned in. ``context.parameters``
    holds the resolved parameters; a value that is an output of a dependency deployed in the
    same plan is :data:`mila.parameters.KNOWN_AFTER_APPLY`. ``context.report``/``log`` are
    no-ops and no cloud call may be made: ``mila validate`` runs without credentials.

    Return :class:`~mila.model.Finding` s: any ``error`` refuses the plan (exit 2), ``warning`` s
    are shown. Raising :class:`~mila.errors.MilaError` counts as one error. The built-in
    ``cloudformation``/``sam`` deployers parse the template, check that every template
    parameter without a default has a value and none is unknown, and run cfn-lint.
    """

    def validate(self, action: Action, context: DeployContext) -> Sequence[Finding]: ...


@dataclass(frozen=True, slots=True)
class BuildContext:
    """Everything a deployer's optional ``build`` gets besides the workspace.

    ``cache`` is the folder (``.mila/cache/build``) where builds are kept, keyed by their
    inputs; ``mila cache clear`` empties it. ``packages`` and the callbacks are as in
    :class:`DeployContext`.
    """

    root: Path
    cache: Path
    packages: Mapping[str, str] = field(default_factory=frozen_mapping)
    report: Callable[[str, str], None] = lambda phase, message: None
    log: TextIO | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


@runtime_checkable
class Builder(Protocol):
    """What a :class:`Deployer` may also offer: a build phase (``sam build``'s work).

    ``build(workspace, context)`` builds everything the service's deploy will package — its
    dependencies installed, its workspace packages bundled — and keeps the result in
    ``context.cache``, so that ``deploy`` finds it there. The core runs it for every changing
    action before any lock is taken or state written (a failure fails that action and skips
    its dependents), and alone with ``mila build``. Return ``False`` when the service has
    nothing to build (``None`` or ``True``: it was built). Raise :class:`DeployError` on
    failure; report progress through ``context.report``; never print.
    """

    def build(self, workspace: Workspace, context: BuildContext) -> bool | None: ...


@runtime_checkable
class ChangeDescriber(Protocol):
    """Optional member of a :class:`Deployer`: ``describe_changes``, for ``mila diff`` and
    ``mila deploy --only-prompt --diff``.

    Called (only when the deployer has it) for each ``first_deploy``/``deploy`` action of a
    plan, before anything is locked, with the context a deploy would get (dependency outputs
    from the records; an output of a dependency deployed in the same plan reads
    :data:`mila.parameters.KNOWN_AFTER_APPLY`). Return the resource changes the deploy would
    make, changing nothing (the built-in CloudFormation deployers create a change set, describe
    it and delete it); raise :class:`~mila.errors.MilaError` when it cannot tell — the diff then
    shows the message for that action. A deployer without it (the example ``shell`` deployer)
    is shown as having no resource diff.
    """

    def describe_changes(self, action: Action, context: DeployContext) -> Sequence[ResourceChange]: ...


@dataclass(frozen=True, slots=True)
class DeployerType:
    """Registration of a deployer.

    ``detect(path)`` says whether a workspace folder (absolute path) is deployable by it
    without an explicit ``deployer`` key (a ``template.yaml`` for ``cloudformation``);
    ``priority`` orders detection (lower first: ``sam`` before ``cloudformation``).
    ``config_keys`` are extra ``[service]`` keys it accepts. ``version`` goes into checksums, so
    a new deployer version redeploys.

    ``inputs(workspace, root)`` (optional) returns the absolute paths of every *file* the
    deployer's build and packaging read for that service, wherever they lie: the files below a
    template's ``CodeUri``, a layer's ``ContentUri`` in another folder, a nested template… The
    core folds each into the service's checksum (the ``packaged`` part): a file git tracks by
    its git object id, any other (git-ignored, reached through a symlink) by its content, so
    what ships is what was hashed. A path outside the project root is refused (exit 2); the
    deployer should raise a :class:`~mila.errors.ConfigError` naming the template property
    itself. It is called on every checksum computation: keep it cheap, import lazily.

    ``iam_statements(config)`` (optional) returns the IAM policy statements (dicts with a
    unique ``Sid``) the deployer needs for this project; ``mila init --print-policy`` merges
    those of every deployer the project's services use with the state backend's own.
    """

    name: str
    create: Callable[[ProjectConfig], Deployer]
    version: str = "0"
    detect: Callable[[Path], bool] = lambda path: False
    priority: int = 100
    config_keys: frozenset[str] = frozenset()
    inputs: Callable[[Workspace, Path], Iterable[Path]] | None = None
    iam_statements: Callable[[ProjectConfig], Sequence[Mapping[str, Any]]] | None = None


# --------------------------------------------------------------------------- references


@dataclass(frozen=True, slots=True)
class ReferenceInfo:
    """What a plan learns about one ``${<kind>:<target>}`` reference in one region, without
    reading its value.

    ``version`` identifies the value (an SSM parameter's version number, a secret's current
    version id): it goes into the checksum, so a new version redeploys its consumers, and the
    deploy uses exactly that version. ``secure`` masks the value wherever mila shows it
    (SecureString parameters, secrets). ``dynamic_reference`` is the CloudFormation dynamic
    reference (``{{resolve:…}}``) that resolves to this version's value inside a Lambda
    function's environment, or ``None`` when CloudFormation cannot resolve it there (an SSM
    SecureString): a deployer then passes the value as a ``NoEcho`` parameter. ``type`` is shown
    to users (``String``, ``SecureString``, ``secret``).
    """

    version: str
    secure: bool = False
    dynamic_reference: str | None = None
    type: str = ""


@runtime_checkable
class ReferenceResolver(Protocol):
    """Looks up the references of one kind (``ssm``, ``secret``) that environment files name.

    ``target`` is the text after ``<kind>:`` as written (``/shop/dev/api-url``,
    ``shop/dev/stripe:api_key``); the resolver interprets it. No method may log or store a
    value.
    """

    name: str

    def describe(self, target: str, region: str) -> ReferenceInfo | None:
        """At plan time: the reference's current version in ``region``, or ``None`` when it
        does not exist there. Must not need permission to read the value itself."""
        ...

    def value(self, target: str, region: str, version: str) -> str:
        """At deploy time, for deployers that need the value (never stored, never logged)."""
        ...

    def copy(self, target: str, source_region: str, target_region: str) -> bool:
        """``mila envs create-replicate``: copy the referenced parameter or secret from
        ``source_region`` to ``target_region``; ``False`` when it already exists there."""
        ...


@dataclass(frozen=True, slots=True)
class ReferenceResolverType:
    """Registration of a reference kind: ``${<name>:<target>}`` in an environment file is
    looked up by the resolver ``create(config)`` returns. Built-ins (plugin ``aws``): ``ssm``
    and ``secret``. ``env`` is the core's (the shell's variables) and cannot be registered."""

    name: str
    create: Callable[[ProjectConfig], ReferenceResolver]
