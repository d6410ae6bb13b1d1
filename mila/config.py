"""``mila.toml`` → typed, validated configuration.

The root ``mila.toml`` (or ``[tool.mila]`` in the root ``pyproject.toml``) is found by walking
up from the current directory, or given with ``-C DIR``. Every key below is a contract; any
other key, or a value of the wrong type, is a :class:`ConfigError` naming the file, the key and
the fix (exit code 2). Plugin-specific keys are validated once plugins are loaded
(:func:`mila.project.load_project`).

Root keys::

    [project]
    name = "shop"                      # required; prefix of stack names
    default_region = "eu-west-1"       # required; an AWS region
    workspaces = ["services/*"]        # globs of workspace folders (default: none)
    artifacts_bucket = "..."           # optional; where deployers upload packaged code
    [state]
    backend = "aws"                    # default "aws"; "local" or a plugin's backend name
    table = "shop-mila-state"          # aws; default "<name>-mila-state"
    checksums = "shop-mila-checksums"  # aws; default "<name>-mila-checksums"
    lock_lease_seconds = 90            # any backend; a lock's lease, renewed every third
    [accounts.<alias>]
    id = "123456789012"                # deploys to `environments` must run in this account
    environments = ["prod"]
    [environments.<name>]
    role_arn = "arn:aws:iam::…:role/…" # assumed for every AWS call of this environment
    plugins = ["module"]               # extra plugin modules to register
    disable_plugins = ["name"]         # plugins (entry point names) not to load
    src = ["uv.lock"]                  # root files every service depends on

Service keys (``[service]`` in a workspace's ``mila.toml``): see :data:`SERVICE_KEYS`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mila.errors import ConfigError, ProjectNotFound
from mila.model import frozen_mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = "mila.toml"

#: Every AWS region (commercial, GovCloud, China) as of botocore 1.44; the core imports no boto3.
AWS_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ca-central-1", "ca-west-1", "cn-north-1", "cn-northwest-1", "eu-central-1",
    "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2",
    "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1",
    "us-east-1", "us-east-2", "us-gov-east-1", "us-gov-west-1", "us-west-1", "us-west-2",
})

ROOT_KEYS = {"project", "state", "accounts", "environments", "plugins", "disable_plugins", "src"}
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
PROJECT_KEYS = {"name", "default_region", "workspaces", "artifacts_bucket"}
#: Keys of ``[service]`` the core knows; deployers add their own (``DeployerType.config_keys``).
SERVICE_KEYS = {"name", "deployer", "template", "regions", "depends_on", "parameters", "src",
                "timeout"}
DEFAULT_LOCK_LEASE_SECONDS = 90
MAX_LOCK_LEASE_SECONDS = 3600
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PROJECT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True, slots=True)
class AccountConfig:
    alias: str
    id: str
    environments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnvironmentConfig:
    """``[environments.<name>]``: settings of one environment."""

    name: str
    role_arn: str | None = None


@dataclass(frozen=True, slots=True)
class StateConfig:
    backend: str
    #: every ``[state]`` key but ``backend`` and the core's keys, defaults filled in
    #: (``table``, ``checksums``)
    options: Mapping[str, Any] = field(default_factory=frozen_mapping)
    #: ``lock_lease_seconds``: how long a lock outlives its holder's last heartbeat (renewed
    #: every third of it), so a killed run's locks are free again after this long
    lock_lease_seconds: int = DEFAULT_LOCK_LEASE_SECONDS


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """The validated root configuration. ``root`` is the only absolute path mila keeps, and it
    never enters a checksum."""

    root: Path
    config_file: str  # relative to root: "mila.toml" or "pyproject.toml"
    name: str
    default_region: str
    workspaces: tuple[str, ...]
    state: StateConfig
    accounts: tuple[AccountConfig, ...] = ()
    plugins: tuple[str, ...] = ()
    disable_plugins: tuple[str, ...] = ()
    src: tuple[str, ...] = ()
    artifacts_bucket: str | None = None
    environments: Mapping[str, EnvironmentConfig] = field(default_factory=frozen_mapping)

    @property
    def mila_dir(self) -> Path:
        """``.mila/`` under the root: caches, logs, local state, the sandbox pid file."""
        return self.root / ".mila"

    @property
    def cache_dir(self) -> Path:
        """``.mila/cache``: file digests, parsed workspace files, builds; all safe to delete."""
        return self.mila_dir / "cache"

    def account_for(self, environment: str) -> AccountConfig | None:
        for account in self.accounts:
            if environment in account.environments:
                return account
        return None


# --------------------------------------------------------------------------- finding


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``mila.toml`` or a ``pyproject.toml``
    with ``[tool.mila]``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "tool" in (doc := read_toml(pyproject, "pyproject.toml")) \
                and "mila" in doc["tool"]:
            return folder
    raise ProjectNotFound(f"no {CONFIG_FILE} found in {start} or any parent folder",
                          hint="run mila inside a project, or pass -C DIR")


def load_config(start: Path | None = None) -> ProjectConfig:
    """Find and validate the root configuration, walking up from ``start`` (default: cwd)."""
    root = find_root(start or Path.cwd())
    if (root / CONFIG_FILE).is_file():
        return parse_config(read_toml(root / CONFIG_FILE, CONFIG_FILE), root, CONFIG_FILE)
    doc = read_toml(root / "pyproject.toml", "pyproject.toml")
    return parse_config(doc["tool"]["mila"], root, "pyproject.toml")


def read_toml(path: Path, shown: str) -> dict[str, Any]:
    """Read a TOML file, turning syntax errors into a :class:`ConfigError` naming ``shown``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=shown) from None
    return parse_toml(data, shown)


def parse_toml(data: bytes, shown: str) -> dict[str, Any]:
    """The TOML document in ``data`` (a file's bytes); :class:`ConfigError` naming ``shown``."""
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"invalid TOML: not UTF-8 ({exc.reason} at byte {exc.start})",
                          file=shown, hint="save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=shown,
                          hint="fix the syntax at the line shown") from None


def loads_toml(text: str) -> dict[str, Any] | None:
    """Parse TOML text; ``None`` when it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


# --------------------------------------------------------------------------- validation


class _Checker:
    """Type checks that name the file and the key in every error."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, key=key, hint=hint)

    def unknown(self, table: dict[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}.{key}" if where else key,
                                f"unknown key '{key}'",
                                hint=f"allowed keys here: {', '.join(sorted(allowed))}")

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {_show(value)}")
        return value

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"expected a list of strings, got {_show(value)}",
                            hint=f'write it like {key.rsplit(".", 1)[-1]} = ["a", "b"]')
        return tuple(value)

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {_show(value)}",
                            hint=f"write it as a [{key}] section")
        return value

    def region(self, value: Any, key: str) -> str:
        region = self.string(value, key)
        check_region(region, file=self.file, key=key)
        return region


def check_region(region: str, *, file: str | None = None, key: str | None = None) -> str:
    """Raise a :class:`ConfigError` unless ``region`` is an AWS region name."""
    if region not in AWS_REGIONS:
        from mila.suggest import did_you_mean

        same_area = sorted(r for r in AWS_REGIONS if r.split("-")[0] == region.split("-")[0])
        hint = did_you_mean(region, AWS_REGIONS) or did_you_mean(region, same_area, "regions") \
            or "for example eu-west-1 or us-east-1 (see `aws account list-regions`)"
        raise ConfigError(f"'{region}' is not an AWS region", file=file, key=key, hint=hint)
    return region


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def parse_config(doc: dict[str, Any], root: Path, file: str) -> ProjectConfig:
    """Validate a root configuration document (already parsed TOML)."""
    c = _Checker(file)
    c.unknown(doc, ROOT_KEYS, "")
    if "project" not in doc:
        raise c.fail("project", "missing the [project] table",
                     hint='add [project] with name = "..." and default_region = "..."')
    project = c.table(doc["project"], "project")
    c.unknown(project, PROJECT_KEYS, "project")
    for required in ("name", "default_region"):
        if required not in project:
            raise c.fail(f"project.{required}", f"missing required key '{required}'")
    name = c.string(project["name"], "project.name")
    if not PROJECT_NAME_RE.match(name):
        raise c.fail("project.name", f"invalid project name '{name}'",
                     hint="use lowercase letters, digits and dashes, at most 40 characters")
    default_region = c.region(project["default_region"], "project.default_region")
    workspaces = c.strings(project.get("workspaces", []), "project.workspaces")
    artifacts = project.get("artifacts_bucket")
    if artifacts is not None:
        artifacts = c.string(artifacts, "project.artifacts_bucket")

    state_doc = c.table(doc.get("state", {}), "state")
    backend = c.string(state_doc.get("backend", "aws"), "state.backend")
    options = {k: v for k, v in state_doc.items() if k not in ("backend", "lock_lease_seconds")}
    lease = state_doc.get("lock_lease_seconds", DEFAULT_LOCK_LEASE_SECONDS)
    if isinstance(lease, bool) or not isinstance(lease, int) \
            or not 1 <= lease <= MAX_LOCK_LEASE_SECONDS:
        raise c.fail("state.lock_lease_seconds",
                     f"expected whole seconds from 1 to {MAX_LOCK_LEASE_SECONDS}, got {_show(lease)}",
                     hint="the default is 90: a killed run's locks are free 90 s later")
    if backend == "aws":
        options.setdefault("table", f"{name}-mila-state")
        options.setdefault("checksums", f"{name}-mila-checksums")

    accounts = []
    for alias, account in c.table(doc.get("accounts", {}), "accounts").items():
        key = f"accounts.{alias}"
        account = c.table(account, key)
        c.unknown(account, {"id", "environments"}, key)
        account_id = c.string(account.get("id"), f"{key}.id")
        if not re.fullmatch(r"\d{12}", account_id):
            raise c.fail(f"{key}.id", f"'{account_id}' is not an AWS account id",
                         hint="an account id is 12 digits, as a string")
        accounts.append(AccountConfig(alias, account_id,
                                      c.strings(account.get("environments", []),
                                                f"{key}.environments")))

    return ProjectConfig(
        environments=_environments(c, doc),
        root=root,
        config_file=file,
        name=name,
        default_region=default_region,
        workspaces=workspaces,
        state=StateConfig(backend, frozen_mapping(options), lease),
        accounts=tuple(accounts),
        plugins=c.strings(doc.get("plugins", []), "plugins"),
        disable_plugins=c.strings(doc.get("disable_plugins", []), "disable_plugins"),
        src=c.strings(doc.get("src", []), "src"),
        artifacts_bucket=artifacts,
    )


def _environments(c: _Checker, doc: dict[str, Any]) -> Mapping[str, EnvironmentConfig]:
    out = {}
    for name, table in c.table(doc.get("environments", {}), "environments").items():
        key = f"environments.{name}"
        table = c.table(table, key)
        c.unknown(table, {"role_arn"}, key)
        role = table.get("role_arn")
        if role is not None:
            role = c.string(role, f"{key}.role_arn")
            if not ROLE_ARN_RE.match(role):
                raise c.fail(f"{key}.role_arn", f"'{role}' is not an IAM role ARN",
                             hint="for example arn:aws:iam::123456789012:role/mila-deploy")
        out[name] = EnvironmentConfig(name, role)
    return frozen_mapping(out)


def parse_service_table(table: Any, file: str, extra_keys: frozenset[str] | set[str]) -> dict[str, Any]:
    """Validate a workspace's ``[service]`` table; returns it with types checked.

    ``extra_keys`` are the keys deployers accept on top of :data:`SERVICE_KEYS`.
    """
    c = _Checker(file)
    table = c.table(table, "service")
    c.unknown(table, SERVICE_KEYS | set(extra_keys), "service")
    out: dict[str, Any] = dict(table)
    if "name" in table:
        out["name"] = c.string(table["name"], "service.name")
        if not NAME_RE.match(out["name"]):
            raise c.fail("service.name", f"invalid name '{out['name']}'",
                         hint="use letters, digits, '-', '_' and '.'")
    for key in ("deployer", "template"):
        if key in table:
            out[key] = c.string(table[key], f"service.{key}")
    for key in ("depends_on", "src"):
        if key in table:
            out[key] = c.strings(table[key], f"service.{key}")
    if "regions" in table:
        regions = c.strings(table["regions"], "service.regions")
        for region in regions:
            check_region(region, file=file, key="service.regions")
        out["regions"] = regions
    if "parameters" in table:
        params = c.table(table["parameters"], "service.parameters")
        for k, v in params.items():
            if not isinstance(v, str):
                raise c.fail(f"service.parameters.{k}", f"expected a string, got {_show(v)}",
                             hint='quote it: Key = "value"')
        out["parameters"] = dict(params)
    if "timeout" in table:
        t = table["timeout"]
        if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= 24 * 60:
            raise c.fail("service.timeout", f"expected minutes from 1 to 1440, got {_show(t)}")
    return out
