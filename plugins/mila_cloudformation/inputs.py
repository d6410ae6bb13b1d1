"""What a service's packaging reads: every local file its template names, for the checksum.

:func:`packaged_files` is the ``inputs`` of the ``sam`` and ``cloudformation`` deployers
(:class:`mila.protocols.DeployerType`). It walks the same properties, with the same file
walker and exclusions, as :mod:`.packaging`: the template itself, each ``CodeUri``,
``ContentUri``, ``DefinitionUri``, Lambda ``Code``…, nested templates (``TemplateURL``,
``Location``) and what *they* name, and ``AWS::Include`` locations — so the core hashes exactly
the files that are zipped and uploaded, wherever they lie in the repository. A path outside the
project root is refused here, naming the template property.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mila.errors import ConfigError, DeployError
from mila.model import Workspace

from .packaging import MAX_NESTING, _entries, _includes, _top_level_includes, local_artifacts
from .templates import find_template, load_template

#: Bumped when what a scan records changes: every cached scan is made again.
SCAN_FORMAT = 1


@dataclass
class Scan:
    """What a template names: the templates read (it and nested ones) and the paths packaged,
    each with how an npm build treats its ``node_modules`` (``""`` never skipped, ``"npm"``
    skipped, ``"npm-manifest"`` skipped when the folder has a ``package.json``)."""

    templates: list[str] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)


def packaged_files(ws: Workspace, root: Path) -> list[Path]:
    """Absolute paths of every file the service's packaging reads (its template included).

    Parsing YAML is most of the cost, so the scan of a template is kept under
    ``.mila/cache/inputs/``, valid while every template it read keeps its size, mtime and
    inode; the folders it names are walked every time.
    """
    template = find_template(root / ws.path, ws.template)
    if template is None:
        return []
    cache = root / ".mila" / "cache" / "inputs" / (
        hashlib.sha256(_rel(template, root).encode()).hexdigest() + ".json")
    scan = _cached(cache, root)
    if scan is None:
        scan = Scan()
        _scan(template, root, scan, depth=0)
        _store(cache, root, scan)
    found = [root / rel for rel in scan.templates]
    for rel, mode in scan.sources:
        source = root / rel
        skip = mode == "npm" or (mode == "npm-manifest" and (source / "package.json").is_file())
        found.extend(_files(source, skip_node_modules=skip))
    return found


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.normpath(path)).relative_to(os.path.normpath(root)).as_posix()


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _cached(cache: Path, root: Path) -> Scan | None:
    try:
        doc = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != SCAN_FORMAT:
        return None
    if any(_stat(root / rel) != st for rel, st in doc["stats"].items()):
        return None
    return Scan(list(doc["templates"]), [(a, b) for a, b in doc["sources"]])


def _store(cache: Path, root: Path, scan: Scan) -> None:
    doc = {"format": SCAN_FORMAT, "templates": scan.templates, "sources": scan.sources,
           "stats": {rel: _stat(root / rel) for rel in scan.templates}}
    from mila.private import open_private, private_dirs

    try:
        private_dirs(cache.parent, root / ".mila")  # everything under .mila is private
        temp = cache.with_suffix(f".{os.getpid()}.tmp")
        with open_private(temp) as out:
            out.write(json.dumps(doc))
        os.replace(temp, cache)
    except OSError:
        pass  # only an optimisation


def _scan(path: Path, root: Path, scan: Scan, depth: int) -> None:
    # recorded before parsing: the scan of a template that does not parse yet is made again
    # once it changes
    scan.templates.append(_rel(path, root))
    try:
        template = load_template(path, root)
    except DeployError:
        return  # an unreadable template fails the deploy with its own message
    folder = path.parent
    body = template.body
    npm = _npm_modes(body, folder)
    for artifact in local_artifacts(body):
        source = _checked(folder / artifact.value, root, template.shown, artifact.where)
        if artifact.rule.form == "template":
            if source.is_file() and depth < MAX_NESTING:
                _scan(source, root, scan, depth + 1)
        else:
            scan.sources.append((_rel(source, root), npm.get(artifact.resource, "")))
    for params in [*_includes(body), *_top_level_includes(body)]:
        source = _checked(folder / params["Location"], root, template.shown,
                          "AWS::Include Location")
        scan.sources.append((_rel(source, root), ""))


def _npm_modes(body: dict[str, Any], folder: Path) -> dict[str, str]:
    """How each function's npm build treats a local ``node_modules`` (it installs its own, and
    npm pack leaves a local one out): decided from the template, so a scan can be cached."""
    glob = (body.get("Globals") or {}).get("Function") or {}
    modes = {}
    for name, resource in (body.get("Resources") or {}).items():
        if not isinstance(resource, dict) or \
                resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        props = {**glob, **(resource.get("Properties") or {})} \
            if resource.get("Type") == "AWS::Serverless::Function" \
            else dict(resource.get("Properties") or {})
        method = (resource.get("Metadata") or {}).get("BuildMethod")
        runtime = props.get("Runtime")
        if isinstance(method, str):
            modes[name] = "npm" if method == "esbuild" or method.startswith("nodejs") else ""
        elif isinstance(runtime, str) and runtime.startswith("nodejs"):
            modes[name] = "npm-manifest"
    return modes


def _files(source: Path, skip_node_modules: bool = False) -> list[Path]:
    if source.is_dir():
        return [path for name, path in _entries(source)
                if not (skip_node_modules and name.startswith("node_modules/"))]
    return [source] if source.is_file() else []


def _checked(path: Path, root: Path, shown: str, where: str) -> Path:
    normal = Path(os.path.normpath(path))
    try:
        normal.relative_to(os.path.normpath(root))
    except ValueError:
        raise ConfigError(f"{shown}: {where} refers to {normal}, outside the project ({root})",
                          hint="move it into the repository (mila hashes only what the repository "
                               "holds, and ships only what it hashed), or use an s3:// "
                               "location") from None
    return normal
