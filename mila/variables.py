"""Environment variables of a service: dotenv files, their placeholders, and their resolution.

Files, in this order (a later file wins for the same name), all optional::

    envs/.env                    at the project root: every service, every environment
    envs/.env.<env>              at the root: every service of one environment
    <service>/envs/.env          one service, every environment
    <service>/envs/.env.<env>    one service, one environment

They are parsed by python-dotenv (quotes, ``export``, comments, multi-line values) without its
own interpolation: mila substitutes its placeholders itself, so a value is the same on every
machine. A value may hold ``${env}``, ``${region}``, ``${env:NAME}`` (the shell's variable
``NAME``, explicitly), ``${service.Output}`` (a dependency's output) and references
``${<kind>:<target>}`` looked up by the plugins registered with ``mila_reference_resolvers``
(``${ssm:/path}``, ``${secret:name}``, ``${secret:name:json-key}`` with the ``aws`` plugin).

At plan time a :class:`VariableResolver` checks every reference exists in the target region and
learns its version (never its value); each variable's :meth:`ResolvedVariable.digest` goes into
the checksum. At deploy time deployers either hand the cloud a reference (CloudFormation dynamic
references) or read values through :class:`VariableValues`, which fetches a reference's value
only when asked. No value of a reference is ever stored, logged or shown unmasked when secure.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mila.errors import ConfigError, MilaError, PluginError
from mila.logs import get_logger
from mila.protocols import ReferenceInfo, ReferenceResolver

if TYPE_CHECKING:
    from mila.model import Workspace
    from mila.project import Project

log = get_logger("mila.variables")

ENV_DIR = "envs"
#: Set by mila for every deployer (``DeployContext.variables``); a file may not set them.
MILA_VARIABLES = ("AWS_REGION", "MILA_ENV")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
MASK = "****"


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``NAME=value`` of an environment file, as written (quotes removed)."""

    name: str
    value: str
    file: str  # relative to the project root
    line: int

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"


def env_files(service_path: str, environment: str) -> list[str]:
    """The four files a service reads, root-relative, in precedence order (last wins)."""
    folder = "" if service_path in ("", ".") else service_path.rstrip("/") + "/"
    names = [f"{ENV_DIR}/.env", f"{ENV_DIR}/.env.{environment}"]
    files = list(names)
    if folder:
        files += [folder + n for n in names]
    return files


def parse_env_text(text: str, shown: str) -> list[Variable]:
    """Parse dotenv ``text`` with python-dotenv's parser (the one ``dotenv_values`` uses, read
    binding by binding to keep line numbers and to refuse what ``dotenv_values`` only warns
    about). ``shown`` names the file in errors."""
    from dotenv.parser import parse_stream

    out: list[Variable] = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise ConfigError(f"line {line}: cannot parse {binding.original.string.strip()[:60]!r}",
                              file=shown, hint="write NAME=value (quote values with spaces or #)")
        if binding.key is None:
            continue  # blank line or comment
        if binding.value is None:
            raise ConfigError(f"line {line}: '{binding.key}' has no value", file=shown,
                              hint=f"write {binding.key}= for an empty value")
        if not NAME_RE.match(binding.key):
            raise ConfigError(f"line {line}: '{binding.key}' is not a valid variable name",
                              file=shown, hint="use letters, digits and _, not starting with a digit")
        if binding.key in MILA_VARIABLES:
            raise ConfigError(f"line {line}: {binding.key} is set by mila", file=shown,
                              hint=f"remove it; mila sets {' and '.join(MILA_VARIABLES)} itself")
        out.append(Variable(binding.key, binding.value, shown, line))
    return out


def read_env_file(root: Path, shown: str) -> list[Variable]:
    """The variables of one file (``[]`` when it does not exist)."""
    try:  # most services have no such file: a plain failing open, no pathlib (plan time)
        with open(os.path.join(root, shown), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    except UnicodeDecodeError:
        raise ConfigError("an environment file must be UTF-8 text", file=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=shown) from None
    return parse_env_text(text, shown)


def load_variables(root: Path, service_path: str, environment: str,
                   read: Callable[[Path, str], list[Variable]] = read_env_file,
                   ) -> dict[str, Variable]:
    """The service's variables in ``environment``: the four files merged, last wins (a name
    keeps the place it first had, so the order is stable). ``read`` reads one file."""
    merged: dict[str, Variable] = {}
    for shown in env_files(service_path, environment):
        for variable in read(root, shown):
            merged[variable.name] = variable
    return merged


# ----------------------------------------------------------------------------- placeholders


@dataclass(frozen=True, slots=True)
class ResolvedReference:
    """A ``${<kind>:<target>}`` checked in one region: its version, never its value."""

    kind: str
    target: str
    region: str
    info: ReferenceInfo

    @property
    def placeholder(self) -> str:
        return f"${{{self.kind}:{self.target}}}"


@dataclass(frozen=True, slots=True)
class OutputRef:
    """``${service.Output}``: known at deploy time, from the dependency's recorded outputs."""

    service: str
    output: str


Part = str | ResolvedReference | OutputRef


@dataclass(frozen=True, slots=True)
class ResolvedVariable:
    """A variable for one environment and region: literal text and what it refers to."""

    name: str
    file: str
    line: int
    raw: str  # the value as written
    parts: tuple[Part, ...]

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def references(self) -> tuple[ResolvedReference, ...]:
        return tuple(p for p in self.parts if isinstance(p, ResolvedReference))

    @property
    def outputs(self) -> tuple[OutputRef, ...]:
        """The dependency outputs it reads (hashed by name here: their values are known after
        the dependency's deploy)."""
        return tuple(p for p in self.parts if isinstance(p, OutputRef))

    @property
    def secure(self) -> bool:
        """Whether the value must be masked (it holds a secret or a SecureString)."""
        return any(r.info.secure for r in self.references)

    def digest_document(self) -> list[list[str]]:
        """What the checksum hashes: text, references by version, outputs by name."""
        doc: list[list[str]] = []
        for part in self.parts:
            if isinstance(part, str):
                doc.append(["text", part])
            elif isinstance(part, ResolvedReference):
                doc.append(["ref", part.kind, part.target, part.info.version])
            else:
                doc.append(["output", part.service, part.output])
        return doc

    def render(self, reference: Callable[[ResolvedReference], str],
               outputs: Mapping[str, Mapping[str, str]]) -> str:
        """The value, with each reference replaced by ``reference(ref)`` and each output by
        its value in ``outputs``."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, ResolvedReference):
                out.append(reference(part))
            else:
                found = outputs.get(part.service, {})
                if part.output not in found:
                    raise MilaError(f"{self.source}: {self.name}: '{part.service}' has no output "
                                    f"'{part.output}'",
                                    hint=f"its outputs are: {', '.join(sorted(found)) or 'none'}")
                out.append(str(found[part.output]))
        return "".join(out)

    def shown(self, outputs: Mapping[str, Mapping[str, str]] | None = None) -> str:
        """For people: text as is, references as written (masked when secure), outputs
        resolved when known."""
        if self.secure:
            return MASK
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, ResolvedReference):
                out.append(part.placeholder)
            else:
                value = (outputs or {}).get(part.service, {}).get(part.output)
                out.append(value if value is not None else f"${{{part.service}.{part.output}}}")
        return "".join(out)


# ----------------------------------------------------------------------------- resolution


class VariableResolver:
    """Resolves services' variables for one run; each reference is described once per region.

    ``strict`` (plans): a missing reference, shell variable or output is an error (exit 2)
    naming the file, the variable, the region and what was looked up. Not strict (destroys):
    a warning, and the variable is left out.
    """

    def __init__(self, project: Project, *, environ: Mapping[str, str] | None = None) -> None:
        self.project = project
        self.environ = os.environ if environ is None else environ
        self._files: dict[tuple[str, str], dict[str, Variable]] = {}
        self._read: dict[str, list[Variable]] = {}
        self._infos: dict[tuple[str, str, str], ReferenceInfo | None] = {}
        self._resolvers: dict[str, ReferenceResolver] = {}
        self._lock = threading.Lock()

    # -- plugins

    def kinds(self) -> list[str]:
        return sorted(self.project.pm.registry.reference_resolvers)

    def resolver(self, kind: str) -> ReferenceResolver:
        with self._lock:
            if kind not in self._resolvers:
                if kind == "env":
                    raise PluginError("a plugin registers the reference kind 'env', which is "
                                      "mila's own (the shell's variables)")
                registered = self.project.pm.registry.reference_resolvers[kind]
                self._resolvers[kind] = registered.create(self.project.config)
            return self._resolvers[kind]

    def describe(self, kind: str, target: str, region: str) -> ReferenceInfo | None:
        key = (kind, target, region)
        with self._lock:
            if key in self._infos:
                return self._infos[key]
        info = self.resolver(kind).describe(target, region)
        with self._lock:
            self._infos[key] = info
        return info

    def prefetch(self, services: Iterable[tuple[Workspace, Iterable[str]]],
                 environment: str) -> None:
        """Describe every reference the services' files name, in each of their regions, up to
        8 at a time (each is one round trip to the cloud), so planning does not wait for them
        one after the other."""
        kinds = set(self.kinds())
        wanted: set[tuple[str, str, str]] = set()
        for service, regions in services:
            names = [ref for v in self.variables(service.path, environment).values()
                     for ref in references_in(v, kinds)]
            wanted.update((kind, target, region) for kind, target in names for region in regions)
        todo = sorted(k for k in wanted if k not in self._infos)
        if len(todo) < 2:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(todo)),
                                thread_name_prefix="mila-references") as pool:
            list(pool.map(lambda key: self.describe(*key), todo))

    def value(self, ref: ResolvedReference) -> str:
        return self.resolver(ref.kind).value(ref.target, ref.region, ref.info.version)

    # -- files

    def variables(self, service_path: str, environment: str) -> dict[str, Variable]:
        """The service's variables (:func:`load_variables`; each file read once per run)."""
        key = (service_path, environment)
        if key not in self._files:
            self._files[key] = load_variables(self.project.root, service_path, environment,
                                              self._read_once)
        return self._files[key]

    def _read_once(self, root: Path, shown: str) -> list[Variable]:
        if shown not in self._read:  # the root files serve every service
            self._read[shown] = read_env_file(root, shown)
        return self._read[shown]

    # -- one service

    def resolve(self, service_name: str, service_path: str, environment: str, region: str, *,
                dependencies: frozenset[str] | set[str] | None = None,
                strict: bool = True) -> dict[str, ResolvedVariable]:
        """Every variable of the service in ``environment`` and ``region``."""
        out: dict[str, ResolvedVariable] = {}
        for name, variable in self.variables(service_path, environment).items():
            try:
                parts = self.parts(variable, environment, region, dependencies)
            except MilaError as exc:
                if strict:
                    raise
                log.warning("variable left out", service=service_name, variable=name,
                            region=region, reason=exc.message)
                continue
            out[name] = ResolvedVariable(name, variable.file, variable.line, variable.value,
                                         parts)
        return out

    def parts(self, variable: Variable, environment: str, region: str,
              dependencies: frozenset[str] | set[str] | None) -> tuple[Part, ...]:
        parts: list[Part] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(variable.value):
            if match.start() > pos:
                parts.append(variable.value[pos:match.start()])
            parts.append(self._placeholder(match.group(1).strip(), variable, environment, region,
                                           dependencies))
            pos = match.end()
        if pos < len(variable.value) or not parts:
            parts.append(variable.value[pos:])
        # adjacent text (from ${env}, ${region}, ${env:X}) is one part: same digest either way
        merged: list[Part] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        return tuple(merged)

    def _placeholder(self, token: str, variable: Variable, environment: str, region: str,
                     dependencies: frozenset[str] | set[str] | None) -> Part:
        where = f"{variable.source}: {variable.name}"
        if token == "env":
            return environment
        if token == "region":
            return region
        kind, sep, target = token.partition(":")
        if sep and kind == "env":
            if target not in self.environ:
                raise MilaError(f"{where}: the shell variable '{target}' (${{env:{target}}}) "
                                "is not set", hint=f"export {target}=... before running mila")
            return self.environ[target]
        if sep:
            if kind not in self.project.pm.registry.reference_resolvers:
                known = ", ".join(f"${{{k}:…}}" for k in self.kinds()) or "none installed"
                raise MilaError(f"{where}: unknown reference kind '{kind}' in '${{{token}}}'",
                                hint=f"references: {known}; also ${{env:NAME}}")
            if not target:
                raise MilaError(f"{where}: '${{{token}}}' names nothing",
                                hint=f"write ${{{kind}:NAME}}")
            info = self.describe(kind, target, region)
            if info is None:
                raise MilaError(f"{where}: {kind} '{target}' does not exist in {region}",
                                hint=f"create it in {region} (or copy it there with `mila envs "
                                     "create-replicate`), or fix the name")
            return ResolvedReference(kind, target, region, info)
        if "." in token:
            service, output = token.split(".", 1)
            if dependencies is not None and service not in dependencies:
                raise MilaError(f"{where}: '${{{token}}}' refers to '{service}', which is not a "
                                "dependency of this service",
                                hint=f"add '{service}' to depends_on")
            return OutputRef(service, output)
        raise MilaError(f"{where}: unknown placeholder '${{{token}}}'",
                        hint="use ${env}, ${region}, ${env:NAME}, ${service.Output} or a "
                             f"reference ({', '.join(self.kinds()) or 'none installed'})")


def variable_digests(variables: Mapping[str, ResolvedVariable]) -> dict[str, str]:
    """``{name: sha256 of what the checksum hashes}`` (versions, never values)."""
    from mila.checksums import canonical_json, sha256_hex

    return {name: sha256_hex(canonical_json(v.digest_document()))
            for name, v in sorted(variables.items())}


# ----------------------------------------------------------------------------- values


class VariableValues(Mapping[str, str]):
    """``DeployContext.variables``: every variable's value in one region, a reference's value
    fetched (once) only when read, plus ``AWS_REGION`` and ``MILA_ENV``. Its ``repr`` shows
    names only."""

    def __init__(self, variables: Mapping[str, ResolvedVariable], *, environment: str,
                 region: str, outputs: Mapping[str, Mapping[str, str]],
                 fetch: Callable[[ResolvedReference], str]) -> None:
        self._variables = dict(variables)
        self._fixed = {"AWS_REGION": region, "MILA_ENV": environment}
        self._outputs = outputs
        self._fetch = fetch
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> str:
        if name in self._fixed:
            return self._fixed[name]
        variable = self._variables[name]
        with self._lock:
            if name not in self._cache:
                self._cache[name] = variable.render(self._fetch, self._outputs)
            return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._variables
        yield from self._fixed

    def __len__(self) -> int:
        return len(self._variables) + len(self._fixed)

    def __repr__(self) -> str:
        return f"VariableValues({', '.join(self)})"


def context_variables(resolver: VariableResolver, planned: Mapping[str, ResolvedVariable] | None,
                      service: Workspace | None, environment: str, region: str,
                      outputs: Mapping[str, Mapping[str, str]],
                      ) -> tuple[VariableValues, Mapping[str, ResolvedVariable]]:
    """``DeployContext.variables`` and ``resolved_variables`` for one action: the variables the
    plan checked, or (a destroy) the service's files read again, anything missing only warned
    about (the service is going away)."""
    resolved: Mapping[str, ResolvedVariable] = planned if planned is not None else {}
    if planned is None and service is not None:
        resolved = resolver.resolve(service.name, service.path, environment, region, strict=False)
    values = VariableValues(resolved, environment=environment, region=region, outputs=outputs,
                            fetch=resolver.value)
    return values, resolved


_ENV_TOKEN = re.compile(r"\$\{\s*env:([^}\s]+)\s*\}")


def parameter_digests(service: Workspace, variables: Mapping[str, ResolvedVariable],
                      environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The shell variables ``[service].parameters`` read with ``${env:NAME}`` (a name no
    environment file sets), as ``{"${env:NAME}": sha256(value)}`` for the checksum; one that is
    not set refuses the plan (exit 2)."""
    from mila.checksums import sha256_hex

    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for key, value in service.parameters.items():
        for name in _ENV_TOKEN.findall(value):
            if name in variables or name in MILA_VARIABLES:
                continue  # a file's variable: in the checksum already
            if name not in environ:
                raise ConfigError(f"parameter '{key}': '${{env:{name}}}' is neither a variable "
                                  "of the service's environment files nor set in the shell",
                                  file=service.config_file,
                                  hint=f"add {name}=... to an envs/.env file, or export {name}")
            out[f"${{env:{name}}}"] = sha256_hex(environ[name].encode("utf-8"))
    return out


# ----------------------------------------------------------------------------- showing


@dataclass(frozen=True, slots=True)
class VariableView:
    """One row of ``mila env show``: never a secure value in clear."""

    service: str
    region: str
    name: str
    source: str
    raw: str
    value: str | None  # None when it cannot be resolved (``error`` says why)
    secure: bool = False
    references: tuple[Mapping[str, object], ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"service": self.service, "region": self.region, "name": self.name,
                "source": self.source, "raw": self.raw, "value": self.value,
                "masked": self.secure, "references": list(self.references),
                "error": self.error}


def show_variables(resolver: VariableResolver, service: Workspace, environment: str,
                   region: str, outputs: Mapping[str, Mapping[str, str]]) -> list[VariableView]:
    """The service's variables in ``region`` for people: each value resolved (a parameter's
    value is read), masked when secure; an unresolvable one carries its error instead."""
    deps = None  # shown even if the dependency is not declared: the plan will say so
    views = []
    for name, variable in resolver.variables(service.path, environment).items():
        try:
            parts = resolver.parts(variable, environment, region, deps)
        except MilaError as exc:
            views.append(VariableView(service.name, region, name, variable.source,
                                      variable.value, None, error=exc.message))
            continue
        resolved = ResolvedVariable(name, variable.file, variable.line, variable.value, parts)
        refs = tuple({"kind": r.kind, "name": r.target, "version": r.info.version,
                      "type": r.info.type, "secure": r.info.secure} for r in resolved.references)
        if resolved.secure:
            value: str | None = MASK
        else:
            try:
                value = resolved.render(resolver.value, outputs)
            except MilaError:  # an output not recorded yet
                value = resolved.shown(outputs)
        views.append(VariableView(service.name, region, name, variable.source, variable.value,
                                  value, resolved.secure, refs))
    return views


# ----------------------------------------------------------------------------- replicas


def references_in(variable: Variable, kinds: set[str]) -> Iterator[tuple[str, str]]:
    """The ``(kind, target)`` of each reference a variable's value names (``env`` excepted)."""
    for match in _PLACEHOLDER.finditer(variable.value):
        kind, sep, target = match.group(1).strip().partition(":")
        if sep and kind in kinds and target:
            yield kind, target


def referenced(resolver: VariableResolver, services: list[Workspace],
               environment: str) -> dict[tuple[str, str], Variable]:
    """Every ``(kind, target)`` the services' files reference in ``environment`` (``env``
    excepted), with the first variable naming it."""
    kinds = set(resolver.kinds())
    found: dict[tuple[str, str], Variable] = {}
    for service in services:
        for variable in resolver.variables(service.path, environment).values():
            for ref in references_in(variable, kinds):
                found.setdefault(ref, variable)
    return found


def references_to_copy(resolver: VariableResolver, services: list[Workspace], environment: str,
                       source: str) -> list[tuple[str, str]]:
    """What ``mila envs create-replicate`` copies from ``source``: every reference of the
    services' files; one missing in ``source`` is an error (exit 2) before anything is written."""
    refs = referenced(resolver, services, environment)
    for (kind, target), variable in refs.items():
        if resolver.describe(kind, target, source) is None:
            raise MilaError(f"{variable.source}: {variable.name}: {kind} '{target}' does not "
                            f"exist in {source}, the region it would be copied from",
                            hint="create it there, or pass --no-copy and create it in the new "
                                 "region yourself")
    return sorted(refs)


def copy_references(resolver: VariableResolver, refs: list[tuple[str, str]], source: str,
                    target: str) -> list[str]:
    """Copy each reference from ``source`` to ``target``; returns those copied (the others
    were there already). Values go from one region to the other, never to a log."""
    copied = []
    for kind, name in refs:
        if resolver.resolver(kind).copy(name, source, target):
            copied.append(f"{kind}:{name}")
    return copied
