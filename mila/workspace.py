"""Workspaces, services vs packages, and the dependency graph between them.

A workspace is a folder matched by ``[project].workspaces``. It is a *service* when its
``mila.toml`` has a ``[service]`` table or a deployer detects it (a ``template.yaml``); otherwise
a shared *package*. Dependencies are the explicit ``depends_on`` plus those inferred from the
workspace's ``pyproject.toml`` ``[project].dependencies`` and ``package.json`` dependencies that
name another workspace (by workspace name or by the other workspace's package name).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from mila.config import CONFIG_FILE, ProjectConfig, parse_service_table, parse_toml
from mila.errors import ConfigError
from mila.model import Workspace, WorkspaceKind, frozen_mapping
from mila.parsed_files import ParsedFiles, file_stat
from mila.protocols import DeployerType

PACKAGE_KEYS = {"name", "depends_on", "src"}
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalisation, so ``Shop_Common`` in a requirement names ``shop-common``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, slots=True)
class WorkspaceGraph:
    """All workspaces of a project and the edges between them (name → direct dependencies)."""

    workspaces: Mapping[str, Workspace]

    def __iter__(self) -> Iterator[Workspace]:
        return iter(self.workspaces.values())

    def __getitem__(self, name: str) -> Workspace:
        return self.workspaces[name]

    def __contains__(self, name: object) -> bool:
        return name in self.workspaces

    @property
    def services(self) -> list[Workspace]:
        return [w for w in self if w.is_service]

    @property
    def packages(self) -> list[Workspace]:
        return [w for w in self if not w.is_service]

    def dependencies(self, name: str, transitive: bool = False) -> list[str]:
        """Direct (or all, depth first, each once) dependencies of ``name``, sorted."""
        if not transitive:
            return sorted(self.workspaces[name].depends_on)
        seen: set[str] = set()
        stack = list(self.workspaces[name].depends_on)
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(self.workspaces[dep].depends_on)
        return sorted(seen)

    def dependents(self, name: str, transitive: bool = False) -> list[str]:
        """Workspaces that depend on ``name`` directly (or transitively), sorted."""
        direct = {w.name for w in self if name in w.depends_on}
        if not transitive:
            return sorted(direct)
        return sorted(w.name for w in self if name in self.dependencies(w.name, transitive=True))

    def topological_order(self) -> list[str]:
        """Names with every dependency before its dependents; ties broken by name."""
        order: list[str] = []
        done: set[str] = set()

        def visit(n: str) -> None:
            if n in done:
                return
            for dep in sorted(self.workspaces[n].depends_on):
                visit(dep)
            done.add(n)
            order.append(n)

        for name in sorted(self.workspaces):
            visit(name)
        return order


def discover(config: ProjectConfig, deployers: Sequence[DeployerType] = ()) -> WorkspaceGraph:
    """Find every workspace, classify it, infer dependencies and validate the graph.

    Each workspace's ``mila.toml``, ``pyproject.toml`` and ``package.json`` is parsed once and
    remembered under ``.mila/cache`` (:mod:`mila.parsed_files`) until it changes."""
    parsed = ParsedFiles(config.cache_dir)
    kinds = _Deployers(deployers)
    found: list[tuple[Workspace, set[str], str | None]] = []  # (workspace, deps, package name)
    for folder, rel in _workspace_folders(config):
        toml_rel = f"{rel}/{CONFIG_FILE}"
        doc = _workspace_doc(parsed, folder, toml_rel)
        pkg_meta = _package_metadata(parsed, folder, rel)
        ws = None
        if "service" in doc or "package" not in doc:
            ws = _service(folder, rel, toml_rel, doc, kinds)
        if ws is None:
            ws = _package(rel, toml_rel, doc)
        found.append((ws, set(pkg_meta["deps"]), pkg_meta["name"]))
    graph = _link(config, found)
    parsed.save()  # after every check: a project with errors leaves the cache as it was
    return graph


def _parse_json(shown: str) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError is one
            raise ConfigError(f"invalid JSON: {exc}", file=shown) from None
    return parse


def _workspace_doc(parsed: ParsedFiles, folder: str, toml_rel: str) -> dict[str, Any]:
    """The workspace's ``mila.toml`` (``{}`` when it has none): ``[service]`` or ``[package]``."""
    path = f"{folder}/{CONFIG_FILE}"
    st = file_stat(path, toml_rel)
    doc = parsed.parse(path, toml_rel, st, partial(parse_toml, shown=toml_rel)) if st is not None else {}
    unknown = set(doc) - {"service", "package"}
    if unknown:
        raise ConfigError(f"unknown table '{sorted(unknown)[0]}'", file=toml_rel,
                          hint="a workspace mila.toml holds [service] or [package]")
    if "service" in doc and "package" in doc:
        raise ConfigError("both [service] and [package]; a workspace is one or the other",
                          file=toml_rel, key="service")
    return doc


class _Deployers:
    """The installed deployer types, as every workspace's classification needs them."""

    def __init__(self, deployers: Sequence[DeployerType]) -> None:
        self.by_name = {d.name: d for d in deployers}
        self.extra_keys: frozenset[str] = frozenset().union(*(d.config_keys for d in deployers))
        self.by_priority = sorted(deployers, key=lambda d: (d.priority, d.name))

    def detect(self, folder: str) -> str | None:
        path = Path(folder)
        return next((d.name for d in self.by_priority if d.detect(path)), None)


def _service(folder: str, rel: str, toml_rel: str, doc: Mapping[str, Any],
             kinds: _Deployers) -> Workspace | None:
    """The service in ``folder``: its ``[service]`` table, its deployer named there or the
    first (by priority) that detects it; ``None`` when it has no table and none detects it."""
    deployer_names = kinds.by_name
    table = parse_service_table(doc["service"], toml_rel, kinds.extra_keys) \
        if "service" in doc else {}
    deployer = table.get("deployer")
    if deployer is None:
        deployer = kinds.detect(folder)
    if deployer is None and "service" in doc:
        installed = ", ".join(sorted(deployer_names)) or "(no deployer plugin is installed)"
        raise ConfigError("no deployer detects this service", file=toml_rel,
                          key="service.deployer", hint=f"set deployer = one of: {installed}")
    if deployer is not None and deployer not in deployer_names:
        raise ConfigError(f"unknown deployer '{deployer}'", file=toml_rel,
                          key="service.deployer",
                          hint=f"installed deployers: {', '.join(sorted(deployer_names)) or 'none'}; "
                               "a plugin may be missing (see `mila plugins`)")
    if deployer is None:
        return None
    return Workspace(
        name=table.get("name", rel.rsplit("/", 1)[-1]),
        path=rel,
        kind=WorkspaceKind.SERVICE,
        depends_on=tuple(table.get("depends_on", ())),
        src=tuple(table.get("src", ())),
        deployer=deployer,
        template=table.get("template"),
        regions=tuple(table["regions"]) if "regions" in table else None,
        parameters=frozen_mapping(table.get("parameters", {})),
        timeout_minutes=table.get("timeout", 60),
        settings=frozen_mapping(table),
        config_file=toml_rel if doc else None,
    )


def _package(rel: str, toml_rel: str, doc: Mapping[str, Any]) -> Workspace:
    """The package in folder ``rel``, from its ``[package]`` table (if any)."""
    table = doc.get("package", {})
    if not isinstance(table, dict):
        raise ConfigError("expected a table", file=toml_rel, key="package")
    unknown_keys = set(table) - PACKAGE_KEYS
    if unknown_keys:
        raise ConfigError(f"unknown key '{sorted(unknown_keys)[0]}'", file=toml_rel,
                          key=f"package.{sorted(unknown_keys)[0]}",
                          hint=f"allowed keys here: {', '.join(sorted(PACKAGE_KEYS))}")
    return Workspace(name=table.get("name", rel.rsplit("/", 1)[-1]), path=rel,
                     kind=WorkspaceKind.PACKAGE, depends_on=tuple(table.get("depends_on", ())),
                     src=tuple(table.get("src", ())), config_file=toml_rel if doc else None)


def _workspace_folders(config: ProjectConfig) -> list[tuple[str, str]]:
    """``(folder, root-relative POSIX path)`` of every workspace, in path order, each once."""
    root = str(config.root)
    cut = len(root.rstrip("/")) + 1
    folders: dict[str, str] = {}
    for pattern in config.workspaces:
        if PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
            raise ConfigError(f"workspace pattern '{pattern}' leaves the project",
                              file=config.config_file, key="project.workspaces",
                              hint="use globs relative to the project root")
        matches = [(str(p)[cut:], str(p)) for p in config.root.glob(pattern)]
        matches = sorted((m for m in matches if not any(part.startswith(".")
                                                        for part in m[0].split("/"))
                          and os.path.isdir(m[1])), key=lambda m: m[0].split("/"))
        # "services/*" may match nothing yet; but its base folder "services" must exist
        prefix = _literal_prefix(pattern)
        literal = PurePosixPath(*prefix) if prefix else None
        if not matches and (literal is None or not (config.root / literal).is_dir()
                            or not _has_glob(pattern)):
            raise ConfigError(f"workspace pattern '{pattern}' matches no folder",
                              file=config.config_file, key="project.workspaces",
                              hint="create the folder or fix the pattern")
        for rel, folder in matches:
            folders.setdefault(rel, folder)
    return sorted(((folder, rel) for rel, folder in folders.items()),
                  key=lambda m: m[1].split("/"))


def _has_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _literal_prefix(pattern: str) -> list[str]:
    """The leading parts of a glob without wildcards: ``["services"]`` for ``services/*``."""
    parts = []
    for part in PurePosixPath(pattern).parts:
        if _has_glob(part):
            break
        parts.append(part)
    return parts


def _package_metadata(parsed: ParsedFiles, folder: str, rel: str) -> dict[str, Any]:
    """Package name and dependency names from pyproject.toml and package.json."""
    name: str | None = None
    deps: list[str] = []
    path, shown = f"{folder}/pyproject.toml", f"{rel}/pyproject.toml"
    if (st := file_stat(path, shown)) is not None:
        project = parsed.parse(path, shown, st, partial(parse_toml, shown=shown)).get("project", {})
        if isinstance(project, dict):
            name = project.get("name") if isinstance(project.get("name"), str) else None
            for req in project.get("dependencies", []) or []:
                if isinstance(req, str) and (m := _REQ_NAME.match(req)):
                    deps.append(normalize(m.group(1)))
    path, shown = f"{folder}/package.json", f"{rel}/package.json"
    if (st := file_stat(path, shown)) is not None:
        pkg = parsed.parse(path, shown, st, _parse_json(shown))
        if isinstance(pkg, dict):
            name = name or (pkg.get("name") if isinstance(pkg.get("name"), str) else None)
            for key in ("dependencies", "devDependencies", "peerDependencies"):
                if isinstance(pkg.get(key), dict):
                    deps.extend(normalize(d) for d in pkg[key])
    return {"name": name, "deps": deps}


def _link(config: ProjectConfig,
          found: list[tuple[Workspace, set[str], str | None]]) -> WorkspaceGraph:
    by_name: dict[str, Workspace] = {}
    for ws, _, _ in found:
        if ws.name in by_name:
            raise ConfigError(f"two workspaces are named '{ws.name}': {by_name[ws.name].path} "
                              f"and {ws.path}", file=ws.config_file or config.config_file,
                              key="service.name" if ws.is_service else "package.name",
                              hint="give one of them another name")
        by_name[ws.name] = ws

    # names a requirement can use for a workspace: its own name, its package name and its
    # folder name, in that order when two workspaces claim the same one
    aliases: dict[str, str] = {normalize(n): n for n in by_name}
    for ws, _, package_name in found:
        if package_name:
            aliases.setdefault(normalize(package_name), ws.name)
    for ws, _, _ in found:
        aliases.setdefault(normalize(PurePosixPath(ws.path).name), ws.name)

    linked: dict[str, Workspace] = {}
    for ws, inferred, _ in found:
        for dep in ws.depends_on:
            if dep not in by_name:
                raise ConfigError(f"'{ws.name}' depends on '{dep}', which is not a workspace",
                                  file=ws.config_file or config.config_file,
                                  key=f"{'service' if ws.is_service else 'package'}.depends_on",
                                  hint=f"workspaces are: {', '.join(sorted(by_name))}")
        deps = set(ws.depends_on) | {aliases[d] for d in inferred if d in aliases}
        deps.discard(ws.name)
        edges = tuple(sorted(deps))
        linked[ws.name] = ws if edges == ws.depends_on else replace(ws, depends_on=edges)

    graph = WorkspaceGraph(frozen_mapping(dict(sorted(linked.items()))))
    cycle = find_cycle({n: w.depends_on for n, w in graph.workspaces.items()})
    if cycle:
        first = graph[cycle[0]]
        raise ConfigError(f"dependency cycle: {' -> '.join(cycle)}",
                          file=first.config_file or config.config_file,
                          key="service.depends_on" if first.is_service else "package.depends_on",
                          hint="remove one of these dependencies")
    return graph


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, …, a]``, or ``None``. Deterministic (sorted visit)."""
    white, grey, black = 0, 1, 2
    color = {n: white for n in edges}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = grey
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if color.get(m, white) == grey:
                return [*stack[stack.index(m):], m]
            if color.get(m, white) == white and m in edges:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = black
        return None

    for n in sorted(edges):
        if color[n] == white:
            found = visit(n)
            if found:
                return found
    return None
