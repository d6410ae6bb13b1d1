"""``mila affected``: the workspaces whose checksum differs between a git revision and the
working tree, and why (:func:`mila.explain.explain`). Both sides are computed by
:func:`mila.checksums.compute_checksums`; the revision side reads its files, root settings and
workspace tables from git through the hasher (:class:`RevisionReader`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mila.checksums import compute_checksums, packaged_inputs
from mila.errors import ConfigError, MilaError
from mila.explain import explain
from mila.model import Workspace, frozen_mapping

if TYPE_CHECKING:
    from mila.config import ProjectConfig
    from mila.project import Project
    from mila.workspace import WorkspaceGraph


@runtime_checkable
class RevisionReader(Protocol):
    """What a hasher offers besides :class:`~mila.protocols.Hasher` when it can read other
    revisions of the project (the ``git`` hasher does); ``mila affected`` needs it."""

    def revision_digests(self, root: Path, revision: str) -> Mapping[str, str]: ...
    def revision_files(self, root: Path, revision: str, paths: Iterable[str]) -> dict[str, bytes]: ...
    def resolve(self, root: Path, revision: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Affected:
    """A workspace whose checksum differs between a revision and the working tree."""

    name: str
    kind: str
    reasons: tuple[str, ...]


def affected_since(project: Project, revision: str) -> tuple[str, list[Affected]]:
    """The workspaces whose inputs differ between ``revision`` and the working tree, with the
    commit ``revision`` names.

    Both sides go through :func:`compute_checksums`. The revision side takes its file digests
    (``git ls-tree``), the root ``mila.toml`` (``src``, project name) and each workspace's own
    ``mila.toml`` (``[service]``/``[package]`` table) from ``revision``; which folders are
    workspaces and the dependency edges between them are today's (a workspace that did not exist
    then has no files then, so it is affected).
    """
    hasher = project.hasher
    if not isinstance(hasher, RevisionReader):
        raise MilaError(f"`mila affected` needs a hasher that reads git revisions; "
                        f"this project uses '{hasher.name}'",
                        hint="run it inside a git work tree")
    root = project.root
    commit = hasher.resolve(root, revision)
    digests = hasher.file_digests(root)
    packaged = packaged_inputs(project, digests)
    now = compute_checksums(project.graph, digests, project.config, project.deployer_version,
                            packaged=packaged)
    then_digests = hasher.revision_digests(root, commit)
    then_config, then_graph = _state_at(project, hasher, commit)
    # today's packaged paths; a tracked one as of the revision, an ignored one as it is now
    # (git knows no other version of it)
    then_packaged = {name: {p: (then_digests[p] if p in digests else d) for p, d in files.items()
                            if p in then_digests or p not in digests}
                     for name, files in packaged.items()}
    then = compute_checksums(then_graph, then_digests, then_config, project.deployer_version,
                             packaged=then_packaged)
    out = []
    for name, current in now.items():
        before = then.get(name)
        if before is None or before.checksum != current.checksum:
            out.append(Affected(name, project.graph[name].kind,
                                tuple(explain(before.manifest if before else None,
                                              current.manifest))))
    return commit, out


def _state_at(project: Project, hasher: RevisionReader,
              commit: str) -> tuple[ProjectConfig, WorkspaceGraph]:
    """The root config as of ``commit``, and today's graph with each workspace's own
    ``[service]``/``[package]`` table as of ``commit`` (one ``git cat-file`` for all)."""
    from mila.config import CONFIG_FILE, loads_toml, parse_config, parse_service_table
    from mila.workspace import WorkspaceGraph

    config, graph = project.config, project.graph
    tables = {ws.name: ws.config_file or f"{ws.path}/{CONFIG_FILE}" for ws in graph}
    contents = hasher.revision_files(project.root, commit, [config.config_file, *tables.values()])

    def read(rel: str) -> dict[str, Any]:
        try:
            return (loads_toml(contents[rel].decode("utf-8")) or {}) if rel in contents else {}
        except UnicodeDecodeError:
            return {}

    then_config = config
    doc = read(config.config_file)
    if config.config_file == "pyproject.toml":
        doc = doc.get("tool", {}).get("mila", {}) if isinstance(doc.get("tool"), dict) else {}
    if doc:
        # unreadable then: compare with today's root settings
        with contextlib.suppress(ConfigError):
            then_config = parse_config(doc, config.root, config.config_file)

    extra_keys = frozenset().union(*(d.config_keys for d in project.pm.registry.deployers.values()))
    workspaces: dict[str, Workspace] = {}
    for ws in graph:
        doc = read(tables[ws.name])
        if ws.is_service:
            raw = doc.get("service")
            table = raw if isinstance(raw, dict) else {}
            # valid then but not now (a key a deployer no longer takes): the table as written
            with contextlib.suppress(ConfigError):
                table = parse_service_table(table, tables[ws.name], extra_keys)
            workspaces[ws.name] = replace(ws, settings=frozen_mapping(table),
                                          src=tuple(table.get("src", ())))
        else:
            raw = doc.get("package")
            table = raw if isinstance(raw, dict) else {}
            workspaces[ws.name] = replace(ws, src=tuple(table.get("src", ())))
    return then_config, WorkspaceGraph(frozen_mapping(workspaces))
