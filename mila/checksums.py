"""Service checksums: what can change a deployment, folded into one sha256, and why it changed.

A workspace's *base* checksum is independent of environment and region. It is the sha256 of a
canonical (sorted-key, compact) JSON document of named parts:

``config``        the workspace's name, kind, ``depends_on``, ``src`` and its whole ``[service]``
                  table as parsed (deployer-specific keys included; its ``mila.toml`` file is
                  not also hashed as a file, so a comment or a reordering changes nothing);
``deployer``      the deployer's name and version (services only), so a new deployer redeploys;
``project``       the root settings that reach every stack: the project name (stack prefix) and
                  the artifacts bucket;
``files``         the workspace's files, relative to its folder, honouring its ``src`` globs,
                  each with its identity from the hasher (content, executable bit, link
                  target; see :class:`~mila.protocols.Hasher`) (in the hashed document as the
                  digest of the listing, see :func:`listing_digest`; in the manifest in full);
``root_files``    the files matched by the root ``src`` globs (lockfiles…), relative to the root,
                  likewise;
``dependencies``  the base checksum of every workspace it depends on, transitively;
``packaged``      (only when not empty) every file the service's deployer reports it builds
                  or packages (``DeployerType.inputs``) that is not already among ``files``:
                  a ``CodeUri`` in another folder, a git-ignored folder that is zipped, a file
                  reached through a symlink. Keyed by root-relative path; a file git tracks
                  keeps its git object id, any other is hashed by content (its git blob id), so
                  what ships is what was hashed. A packaged path outside the root is an error.

No absolute path, mtime, host name or dict order reaches the document, so the same tree gives
the same checksum on every machine and in every folder. :func:`deploy_checksum` folds each
plugin's ``mila_checksum_inputs`` and the service's environment variables (by digest, see
:mod:`mila.variables`; its ``envs/.env*`` files are left out of ``files``) into the base for one
environment and region; with neither the checksum *is* the base checksum, so ``mila
checksums`` prints what deploys record.
:func:`with_consumed_outputs` then folds in the hashes of the dependency outputs a service
consumes (``${service.Output}`` parameters; none consumed: unchanged). Input
values are hashed, never kept. The *manifest* kept with each checksum holds these parts, so
:func:`mila.explain.explain` can say which files, dependencies, settings or inputs changed
(:mod:`mila.affected` compares the working tree with a git revision).

Globs (``src`` keys; git's wildmatch, matched by ``pathspec``) are relative to their folder:
``*`` and ``?`` stay within one path segment, ``**`` spans any number of them, and a pattern that
names a folder takes everything below it (``src = ["src", "template.yaml"]``).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mila.errors import ConfigError, MilaError
from mila.explain import explain as explain  # re-exported: its home before mila.explain
from mila.model import Workspace

if TYPE_CHECKING:
    from mila.config import ProjectConfig
    from mila.project import Project
    from mila.workspace import WorkspaceGraph

#: Bumped when the document's layout changes: every checksum changes with it, once.
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Checksum:
    """A workspace's checksum and the manifest that explains it."""

    name: str  # workspace name
    checksum: str  # sha256 hex
    #: JSON-serialisable: named parts, per-file digests, dependency checksums, hashed inputs
    manifest: Mapping[str, Any]


# --------------------------------------------------------------------------- canonical form


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8; TOML dates and other odd values as strings. File names
    that are not UTF-8 (decoded with ``surrogateescape``) come back as their own bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8", "surrogateescape")


def listing_digest(files: Mapping[str, str]) -> str:
    """sha256 of ``path NUL digest NUL`` for each file, sorted by path: unambiguous (a path
    holds no NUL, a digest is hex) and much cheaper than the same data as JSON."""
    if not files:
        return sha256_hex(b"")
    # the same bytes as ``"".join(f"{p}\0{d}\0" …)``, joined in C (paths are unique, so sorting
    # the pairs sorts the paths; a sorted listing sorts in one pass)
    text = "\0".join(chain.from_iterable(sorted(files.items()))) + "\0"
    return sha256_hex(text.encode("utf-8", "surrogateescape"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- globs

_GLOB_CHARS = re.compile(r"[*?\[]")


def src_spec(patterns: Sequence[str]) -> Any:
    """The ``pathspec`` matcher of ``src`` globs: git's wildmatch (``gitignore`` patterns),
    each anchored at the folder, so ``*.py`` takes the folder's own files only and a leading
    ``!`` or ``#`` is a plain character; a pattern naming a folder takes everything below it."""
    import pathspec  # only when a src glob has wildcards

    lines = []
    for pattern in patterns:
        name = pattern.strip()
        while name.startswith("./"):
            name = name[2:]
        name = "/" + name.strip("/")
        lines += [name, name + "/**"]  # the path, or a folder and everything below it
    return pathspec.PathSpec.from_lines("gitignore", lines)


def select_files(paths: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The paths (sorted) that match any of ``patterns``; ``paths`` must be sorted.

    A literal pattern (no wildcard) is looked up by bisection, so root ``src = ["uv.lock"]``
    costs nothing on a large repository.
    """
    chosen: set[str] = set()
    wild = [p for p in patterns if _GLOB_CHARS.search(p)]
    for pattern in patterns:
        if pattern in wild:
            continue
        name = pattern.strip()
        while name.startswith("./"):
            name = name[2:]
        name = name.strip("/")
        if name in ("", "."):  # the folder itself
            return list(paths)
        i = bisect.bisect_left(paths, name)
        if i < len(paths) and paths[i] == name:
            chosen.add(name)
        chosen.update(_under(paths, name + "/"))
    if wild:
        chosen.update(src_spec(wild).match_files(paths))
    return sorted(chosen)


def _bounds(paths: Sequence[str], prefix: str) -> tuple[int, int]:
    """The slice of the sorted ``paths`` that start with ``prefix`` (a folder ending in ``/``)."""
    lo = bisect.bisect_left(paths, prefix)
    return lo, bisect.bisect_left(paths, prefix[:-1] + "0", lo)  # "0" sorts right after "/"


def _under(paths: Sequence[str], prefix: str) -> Sequence[str]:
    lo, hi = _bounds(paths, prefix)
    return paths[lo:hi]


# --------------------------------------------------------------------------- base checksums


def workspace_checksums(project: Project, names: Iterable[str] | None = None) -> dict[str, Checksum]:
    """Environment-independent checksum of every workspace (or of ``names`` and what they
    need). One ``hasher.file_digests(root)`` call for the whole repository, on a thread while
    the workspaces are discovered: the hasher mostly waits for git, which then runs alongside
    discovery instead of after it (the wall time, not the CPU time, of a warm run)."""
    wanted = None if names is None else list(names)
    hashing = _Background(project.hasher.file_digests, project.root)
    try:
        graph = project.graph
        if wanted is not None:
            _check_names(graph, wanted)
    except BaseException:  # raised once the hasher is done (no git left running); its own
        hashing.wait()     # error, if any, matters less than this one
        raise
    digests = hashing.result()
    packaged = packaged_inputs(project, digests, wanted)
    return compute_checksums(graph, digests, project.config, project.deployer_version, wanted,
                             packaged=packaged)


class _Background:
    """``fn(*args)`` on a thread; :meth:`result` waits, then returns or raises what it did."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._out: list[Any] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(fn, args), name="mila-hasher",
                                        daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._out.append(fn(*args))
        except BaseException as exc:  # handed to the caller's thread
            self._error.append(exc)

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self.wait()
        if self._error:
            raise self._error[0]
        return self._out[0]


def packaged_inputs(project: Project, digests: Mapping[str, str],
                    names: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """``{service: {root-relative path: digest}}``: the files each service's deployer reports
    through ``DeployerType.inputs`` (services of ``names`` and their dependencies, default all)."""
    graph, root = project.graph, project.root
    needed = None if names is None else _closure(graph, names)
    types = project.pm.registry.deployers
    out: dict[str, dict[str, str]] = {}
    for ws in graph.services:
        inputs = types[ws.deployer].inputs if ws.deployer in types else None
        if inputs is None or (needed is not None and ws.name not in needed):
            continue
        files: dict[str, str] = {}
        for path in inputs(ws, root):
            rel = _inside(root, Path(path), ws)
            digest = digests.get(rel)
            files[rel] = digest if digest is not None and not Path(path).is_symlink() \
                else content_digest(Path(path))
        out[ws.name] = files
    return out


def _closure(graph: WorkspaceGraph, names: Iterable[str]) -> set[str]:
    needed: set[str] = set()
    for name in names:
        needed.add(name)
        needed.update(graph.dependencies(name, transitive=True))
    return needed


def _inside(root: Path, path: Path, ws: Workspace) -> str:
    """``path`` relative to ``root`` (lexically: a symlink inside the root is inside)."""
    import os

    normal = Path(os.path.normpath(path if path.is_absolute() else root / path))
    try:
        return normal.relative_to(os.path.normpath(root)).as_posix()
    except ValueError:
        raise ConfigError(f"service '{ws.name}' packages {normal}, which is outside the project "
                          f"({root})", file=ws.config_file,
                          hint="move it into the repository (mila hashes only what the "
                               "repository holds), or reference an s3:// location") from None


def content_digest(path: Path) -> str:
    """A file's identity as the hashers give it (:class:`~mila.protocols.Hasher`), following
    symlinks: the git blob id of its content, ``100755:`` before it when it is executable (the
    zip records 0755 for it)."""
    try:
        data = path.read_bytes()
        executable = path.stat().st_mode & stat.S_IXUSR
    except OSError as exc:
        raise MilaError(f"cannot read {path}, which a service packages: {exc.strerror}") from None
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    return f"100755:{blob}" if executable else blob


def _check_names(graph: WorkspaceGraph, names: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(graph.workspaces))
    if unknown:
        raise MilaError(f"unknown workspace{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                        hint=f"workspaces are: {', '.join(sorted(graph.workspaces)) or 'none'}")


def compute_checksums(graph: WorkspaceGraph, digests: Mapping[str, str], config: ProjectConfig,
                      deployer_version: Callable[[str], str],
                      names: Iterable[str] | None = None, *,
                      packaged: Mapping[str, Mapping[str, str]] | None = None,
                      ) -> dict[str, Checksum]:
    """The base checksums of ``names`` (default: all) and their dependencies, from a digest
    map (``{root-relative path: object id}``) — the working tree's or a revision's — and the
    files each service packages (see :func:`packaged_inputs`)."""
    paths = sorted(digests)
    values = list(map(digests.__getitem__, paths))
    needed = set(graph.workspaces) if names is None else _closure(graph, names)
    packaged = packaged or {}
    root_files = {p: digests[p] for p in select_files(paths, config.src)} if config.src else {}
    root_listing = listing_digest(root_files)
    project_part = {"name": config.name, "artifacts_bucket": config.artifacts_bucket}

    out: dict[str, Checksum] = {}
    closure: dict[str, set[str]] = {}  # transitive dependencies, built in topological order
    for name in graph.topological_order():
        if name not in needed:
            continue
        ws = graph[name]
        closure[name] = set(ws.depends_on).union(*(closure[d] for d in ws.depends_on))
        deps = sorted(closure[name])
        files = workspace_files(ws, paths, values)
        parts = {
            "config": workspace_config(ws),
            "deployer": ({"name": ws.deployer, "version": deployer_version(ws.deployer)}
                         if ws.is_service and ws.deployer else None),
            "project": project_part,
            "files": files,
            "root_files": root_files,
            "dependencies": {d: out[d].checksum for d in deps},
        }
        extra = _packaged_part(ws, files, packaged.get(name))
        if extra:  # absent when empty: services packaging only their own files keep their checksum
            parts["packaged"] = extra
        # file lists enter the document as the digest of their listing: canonical JSON of
        # 30,000 paths took most of the time, and the root listing is the same for everyone
        hashed = {**parts, "files": listing_digest(files), "root_files": root_listing}
        if extra:
            hashed["packaged"] = listing_digest(extra)
        checksum = sha256_hex(canonical_json({"format": FORMAT, "parts": hashed}))
        out[name] = Checksum(name, checksum, {"format": FORMAT, "name": name, "kind": ws.kind,
                                              "path": ws.path, "checksum": checksum,
                                              "parts": parts})
    return out


def _packaged_part(ws: Workspace, files: Mapping[str, str],
                   packaged: Mapping[str, str] | None) -> dict[str, str]:
    """The packaged files not already hashed as the workspace's own ``files``."""
    if not packaged:
        return {}
    prefix = "" if ws.path in ("", ".") else ws.path.rstrip("/") + "/"
    cut = len(prefix)
    return {p: d for p, d in packaged.items()
            if not (p.startswith(prefix) and files.get(p[cut:]) == d)}


def workspace_config(ws: Workspace) -> dict[str, Any]:
    """The part of a workspace's configuration that can change what it deploys."""
    settings = _as_parsed_json(dict(ws.settings))
    return {"name": ws.name, "kind": ws.kind, "depends_on": sorted(ws.depends_on),
            "src": list(ws.src), "settings": settings}


def _as_parsed_json(value: Any) -> Any:
    """``json.loads(canonical_json(value))``: what the manifest keeps, keys sorted. Tables of
    strings, integers, booleans and lists of them (every ``[service]`` table in practice) are
    copied directly; anything else takes the round trip."""
    try:
        return _plain(value)
    except TypeError:
        return json.loads(canonical_json(value))


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        if any(type(k) is not str for k in value):
            raise TypeError("a key that is not a string")
        return {k: _plain(value[k]) for k in sorted(value)}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    raise TypeError(f"{kind.__name__} takes the JSON round trip")


def workspace_files(ws: Workspace, paths: Sequence[str], values: Sequence[str]) -> dict[str, str]:
    """``{path relative to the workspace: digest}`` of its files, honouring its ``src`` globs;
    ``paths`` are all root-relative paths, sorted, and ``values`` their digests."""
    prefix = "" if ws.path in ("", ".") else ws.path.rstrip("/") + "/"
    lo, hi = _bounds(paths, prefix) if prefix else (0, len(paths))
    files = dict(zip(map(itemgetter(slice(len(prefix), None)), paths[lo:hi]), values[lo:hi],
                     strict=True))
    # its own mila.toml is hashed as parsed config (``config``): a comment changes nothing
    files.pop("mila.toml", None)
    # its environment files enter per environment, as variables (``deploy_checksum``): a new
    # line in envs/.env.prod must not redeploy dev
    env = bisect.bisect_left(paths, prefix + "envs/.env", lo, hi)
    for rel in _env_files(paths[env:hi], len(prefix)):
        del files[rel]
    if ws.src:  # the keys are still sorted: the common prefix was cut from sorted paths
        files = {r: files[r] for r in select_files(list(files), ws.src)}
    return files


def _env_files(paths: Iterable[str], cut: int) -> list[str]:
    """The environment files (``envs/.env``, ``envs/.env.<env>``) among a workspace's files:
    ``paths`` sorted, from the first that may be one, with ``cut`` characters of prefix."""
    out: list[str] = []
    for path in paths:
        r = path[cut:]
        if not r.startswith("envs/.env"):
            break  # sorted: the candidates are adjacent
        if r == "envs/.env" or r[9] == ".":
            out.append(r)
    return out


# --------------------------------------------------------------------------- per deployment


def deploy_checksum(project: Project, base: Checksum, service: Workspace, environment: str,
                    region: str, variables: Mapping[str, str] | None = None) -> Checksum:
    """Folds every plugin's ``mila_checksum_inputs(service=, environment=, region=)`` and the
    service's environment ``variables`` (``{name: digest}``, see
    :func:`mila.variables.variable_digests`) into ``base``. With neither the result *is*
    ``base`` (same checksum). Input values are hashed; the manifest keeps
    ``"<plugin>:<name>" -> sha256(value)`` and ``variables``, never a value in clear."""
    inputs = checksum_inputs(project, service, environment, region)
    if not inputs and not variables:
        return base
    document: dict[str, Any] = {"format": FORMAT, "base": base.checksum, "inputs": inputs}
    if variables:  # absent when none: checksums recorded before variables existed still match
        document["variables"] = dict(sorted(variables.items()))
    checksum = sha256_hex(canonical_json(document))
    manifest = {**base.manifest, "checksum": checksum, "base_checksum": base.checksum,
                "inputs": inputs, "environment": environment, "region": region}
    if variables:
        manifest["variables"] = document["variables"]
    return Checksum(base.name, checksum, manifest)  # a dict: state backends json.dumps it


def consumed_output_hashes(consumed: Iterable[tuple[str, str]],
                           outputs: Mapping[str, Mapping[str, str]]) -> dict[str, str | None]:
    """``{"service.Output": sha256(value)}`` of each output a service consumes through its
    ``${service.Output}`` parameters; ``None`` when that output is not known (not deployed)."""
    return {f"{dep}.{name}": (sha256_hex(str(outputs[dep][name]).encode("utf-8"))
                              if name in outputs.get(dep, {}) else None)
            for dep, name in sorted(set(consumed))}


def with_consumed_outputs(c: Checksum, hashes: Mapping[str, str | None]) -> Checksum:
    """Fold the hashes of the consumed outputs into ``c``: a dependency recreated with a new
    ARN changes its consumers' checksums. No outputs consumed: ``c`` itself."""
    if not hashes:
        return c
    checksum = sha256_hex(canonical_json({"format": FORMAT, "base": c.checksum,
                                          "outputs": dict(hashes)}))
    return Checksum(c.name, checksum, {**c.manifest, "checksum": checksum,
                                       "outputs": dict(hashes)})


def checksum_inputs(project: Project, service: Workspace, environment: str,
                    region: str) -> dict[str, str]:
    """Every plugin's inputs, namespaced by plugin, each value replaced by its sha256."""
    inputs: dict[str, str] = {}
    # one call per plugin (through pluggy) so each input is named by its plugin
    for plugin_name, result in project.pm.call_each("mila_checksum_inputs", service=service,
                                                    environment=environment, region=region):
        for key, value in cast("Mapping[str, Any]", result or {}).items():
            text = value if isinstance(value, str) else canonical_json(value).decode()
            inputs[f"{plugin_name}:{key}"] = sha256_hex(text.encode("utf-8"))
    return dict(sorted(inputs.items()))
