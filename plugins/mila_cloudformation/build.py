"""The build phase, as ``sam build`` does it: dependencies installed, workspace packages bundled.

:func:`build_targets` finds what a template builds: every ``AWS::Serverless::Function`` with
a local ``CodeUri`` (``Globals`` honoured) whose runtime is Python (always: its workspace
packages must reach it), Node.js with a ``package.json``, or any with ``Metadata.BuildMethod``;
and every ``AWS::Serverless::LayerVersion`` with ``Metadata.BuildMethod``. ``Architectures``
(``x86_64``/``arm64``) and ``Metadata.BuildProperties`` are passed on. As ``sam build`` does,
an ``AWS::Lambda::Function`` whose ``Code`` is a local folder is built the same way, and an
``AWS::Lambda::LayerVersion`` with ``Metadata.BuildMethod``.

:func:`build_target` runs the build with ``aws-lambda-builders`` — the library ``sam build``
uses (``pip install 'mila[build]'``; imported only when a build runs): Python with pip, Node.js
with npm, ``esbuild``, ``makefile`` and the others it offers. For a Python runtime that is not
this interpreter's (a ``python3.12`` function built by Python 3.11), where ``sam build`` needs
a container, mila calls pip itself with Lambda-platform wheels (``--platform
manylinux2014_<arch> --python-version X.Y --implementation cp --only-binary=:all:``) and fails
naming the dependency that has no such wheel.

Workspace packages the service depends on (``depends_on``, inferred from ``pyproject.toml`` or
``package.json``) are installed into every Python build from their local source — their import
packages copied (``src/`` layout or flat), their own registry dependencies added to pip's — and
never fetched from a registry: a requirement naming a workspace package is taken out of what pip
sees. Likewise for an npm build: workspace npm packages leave ``package.json`` (theirs
dependencies join it) and are copied into ``node_modules/<name>``.

Registry dependencies are installed once per (requirements, Python, architecture, builder)
and kept as ``deps-<key>`` in the same cache, so functions with the same requirements share
one pip run and a code change rebuilds by copying. Builds are cached under
``.mila/cache/build/<key>``, ``key`` being the sha256 of everything a
build reads (see :func:`build_key`): an unchanged function is not built again, by this run's
other regions or by the next run. The cache keeps at most ``MILA_BUILD_CACHE_MB`` megabytes
(default 2048), dropping the least recently used builds; ``mila cache clear`` empties it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mila.errors import DeployError
from mila.private import private_dirs

from .packaging import _entries, _get
from .version import builder_version

#: Bumped when a build's layout changes: every cached build is rebuilt, once.
BUILD_FORMAT = "1"
DEFAULT_CACHE_MB = 2048
Log = Callable[[str], None]
_ARCHITECTURES = ("x86_64", "arm64")
_LAYERS = {"AWS::Serverless::LayerVersion": "ContentUri", "AWS::Lambda::LayerVersion": "Content"}
_PIP_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}


def _no_log(line: str) -> None:
    pass


@dataclass(frozen=True)
class BuildTarget:
    """One function or layer to build from ``source`` with ``method``."""

    resource: str
    source: Path
    runtime: str
    method: str  # a runtime (python3.12, nodejs20.x), esbuild, makefile…
    architecture: str = "x86_64"
    properties: Mapping[str, Any] = field(default_factory=dict)
    layer: bool = False
    #: the property that names the source folder and, once built, the artifact
    code_property: str = "CodeUri"

    @property
    def where(self) -> str:
        return f"{self.resource}.{self.code_property}"

    @property
    def python(self) -> bool:
        return self.method.startswith("python") or \
            (self.method == self.runtime and self.runtime.startswith("python"))


# ----------------------------------------------------------------------------- finding


def build_targets(body: Mapping[str, Any], folder: Path) -> list[BuildTarget]:
    """What ``body`` (a template in ``folder``) builds, in template order."""
    glob = _get(dict(body.get("Globals") or {}), ("Function",)) or {}
    found: list[BuildTarget] = []
    for name, resource in (body.get("Resources") or {}).items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Properties", {}), dict):
            continue
        props = resource.get("Properties") or {}
        metadata = resource.get("Metadata") if isinstance(resource.get("Metadata"), dict) else {}
        method = metadata.get("BuildMethod")
        build_props = metadata.get("BuildProperties") or {}
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            target = _function_target(name, {**glob, **props}, folder, method, build_props)
        elif kind == "AWS::Lambda::Function" and isinstance(props.get("Code"), str):
            # as `sam build` does: a plain Lambda function whose Code is a local folder
            target = _function_target(name, {**props, "CodeUri": props["Code"]}, folder, method,
                                      build_props, code_property="Code")
        elif kind in _LAYERS and isinstance(method, str):
            target = _layer_target(name, props, folder, method, build_props, _LAYERS[kind])
        else:
            target = None
        if target is not None:
            found.append(target)
    return found


def _function_target(name: str, props: Mapping[str, Any], folder: Path, method: Any,
                     build_props: Any, code_property: str = "CodeUri") -> BuildTarget | None:
    code = props.get("CodeUri", ".")
    runtime = props.get("Runtime")
    if props.get("PackageType") == "Image" or "InlineCode" in props or not isinstance(code, str) \
            or "://" in code or not isinstance(runtime, str):
        return None
    source = folder / code
    if not source.is_dir():  # a single file is zipped as it is; a missing one, the packager reports
        return None
    if not isinstance(method, str):
        node = runtime.startswith("nodejs") and (source / "package.json").is_file()
        if runtime.startswith("python") or node:
            method = runtime
        else:
            return None
    architectures = props.get("Architectures") or ["x86_64"]
    arch = architectures[0] if isinstance(architectures, list) and architectures else "x86_64"
    return BuildTarget(name, source, runtime, method, str(arch),
                       dict(build_props) if isinstance(build_props, dict) else {},
                       code_property=code_property)


def _layer_target(name: str, props: Mapping[str, Any], folder: Path, method: str,
                  build_props: Any, code_property: str) -> BuildTarget | None:
    content = props.get(code_property, ".")
    if not isinstance(content, str) or "://" in content or not (folder / content).is_dir():
        return None
    architectures = props.get("CompatibleArchitectures") or ["x86_64"]
    arch = architectures[0] if isinstance(architectures, list) and architectures else "x86_64"
    runtimes = props.get("CompatibleRuntimes") or []
    runtime = method if method != "makefile" else (runtimes[0] if runtimes else "provided.al2")
    return BuildTarget(name, folder / content, str(runtime), method, str(arch),
                       dict(build_props) if isinstance(build_props, dict) else {}, layer=True,
                       code_property=code_property)


# ----------------------------------------------------------------------------- cache keys


def _listing(folder: Path, skip_node_modules: bool = False) -> dict[str, str]:
    if folder.is_file():
        return {folder.name: hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in _entries(folder)
            if not (skip_node_modules and name.split("/", 1)[0] == "node_modules")}


def build_key(target: BuildTarget, packages: Mapping[str, Path]) -> str:
    """sha256 of everything the build reads: its sources (manifests and lock files among
    them), the workspace packages it bundles, method, options, runtime, architecture, and the
    builder's version — not where the project lives."""
    document = {
        "format": BUILD_FORMAT, "builder": builder_version(), "method": target.method,
        "runtime": target.runtime, "architecture": target.architecture, "layer": target.layer,
        "properties": target.properties,
        "source": _listing(target.source, skip_node_modules=not target.python),
        "packages": {n: _listing(p) for n, p in sorted(packages.items())}
        if target.python or target.method.startswith("nodejs") else {},
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


# ----------------------------------------------------------------------------- the cache


class BuildCache:
    """Built artifacts under ``folder/<key>/artifact``; at most ``cap_bytes`` in all.

    A build is written to a temporary folder and renamed into place, so a crash never leaves
    a half build, and two processes building the same key both end with a complete one.
    """

    _locks: dict[str, threading.Lock] = {}
    _locks_lock = threading.Lock()

    def __init__(self, folder: Path, cap_bytes: int | None = None) -> None:
        self.folder = folder
        if cap_bytes is None:
            cap_bytes = int(os.environ.get("MILA_BUILD_CACHE_MB", DEFAULT_CACHE_MB)) * 1024 * 1024
        self.cap_bytes = cap_bytes
        self.hits = 0
        self.builds = 0

    def get_or_build(self, key: str, build: Callable[[Path, Path], None]) -> Path:
        """The artifact folder of ``key``, building it with ``build(artifact, scratch)`` first
        when it is not cached."""
        with self._locks_lock:
            lock = self._locks.setdefault(str(self.folder / key), threading.Lock())
        with lock:
            final = self.folder / key
            if (final / "complete").is_file():
                os.utime(final)  # recently used
                self.hits += 1
                return final / "artifact"
            temp = self.folder / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            try:
                private_dirs(self.folder, self.folder)  # like everything under .mila
                (temp / "artifact").mkdir(parents=True)
                (temp / "scratch").mkdir()
                build(temp / "artifact", temp / "scratch")
                shutil.rmtree(temp / "scratch")
                (temp / "complete").write_text(key)
                shutil.rmtree(final, ignore_errors=True)
                os.replace(temp, final)
            finally:
                shutil.rmtree(temp, ignore_errors=True)
            self.builds += 1
            self.evict(keep=key)
            return final / "artifact"

    def evict(self, keep: str = "") -> list[str]:
        """Drop the least recently used builds while the cache is over its cap."""
        entries = []
        for entry in self.folder.iterdir() if self.folder.is_dir() else []:
            if entry.name.startswith(".") or not (entry / "complete").is_file():
                continue
            size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
            entries.append((entry.stat().st_mtime, entry.name, size))
        total = sum(size for _, _, size in entries)
        dropped = []
        for _, name, size in sorted(entries):
            if total <= self.cap_bytes:
                break
            if name == keep:
                continue
            shutil.rmtree(self.folder / name, ignore_errors=True)
            total -= size
            dropped.append(name)
        return dropped


# ----------------------------------------------------------------------------- building


def build_target(target: BuildTarget, packages: Mapping[str, Path], cache: BuildCache,
                 log: Log = _no_log) -> Path:
    """The built artifact folder of ``target`` (from the cache when its inputs are unchanged)."""
    if not target.source.is_dir():
        raise DeployError(f"{target.where} refers to {target.source}, which is not a folder",
                          hint="a built function's CodeUri (a layer's ContentUri) is a folder")
    if target.architecture not in _ARCHITECTURES:
        raise DeployError(f"{target.resource}: unknown architecture '{target.architecture}'",
                          hint="use x86_64 or arm64")
    key = build_key(target, packages)
    started = time.monotonic()

    def run(artifact: Path, scratch: Path) -> None:
        log(f"building {target.resource} ({target.method}, {target.architecture})")
        if target.python:
            _build_python(target, packages, artifact, cache, log)
        elif target.method.startswith("nodejs") and _node_packages(packages):
            _build_node(target, _node_packages(packages), artifact, scratch, log)
        else:
            _build_with_library(target, artifact, scratch, target.source / _manifest(target))
        _normalise(artifact)
        log(f"built {target.resource} in {time.monotonic() - started:.1f}s")

    path = cache.get_or_build(key, run)
    log(f"{target.resource}: build {key[:12]} ready")
    return path


def _manifest(target: BuildTarget) -> str:
    if target.python:
        return "requirements.txt"
    if target.method == "makefile":
        return "Makefile"
    return "package.json"


def _library_capability(target: BuildTarget) -> tuple[str, str, dict[str, Any]]:
    """(language, dependency manager, options) for aws-lambda-builders, as SAM maps them."""
    method = target.method
    if method.startswith("python"):
        return "python", "pip", {}
    if method.startswith("nodejs"):
        return "nodejs", "npm", {}
    if method == "esbuild":
        options = {_snake(k): v for k, v in target.properties.items()}
        return "nodejs", "npm-esbuild", options
    if method == "makefile":
        return "provided", None, {"build_logical_id": target.resource}  # type: ignore[return-value]
    raise DeployError(f"{target.resource}: unsupported BuildMethod '{method}'",
                      hint="use a python3.x or nodejsNN.x runtime, esbuild or makefile")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _build_with_library(target: BuildTarget, artifact: Path, scratch: Path, manifest: Path,
                        runtime: str | None = None, source: Path | None = None) -> None:
    try:
        from aws_lambda_builders.builder import LambdaBuilder
        from aws_lambda_builders.exceptions import LambdaBuilderError
    except ImportError:
        raise DeployError(f"{target.where}: building needs aws-lambda-builders",
                          hint="pip install 'mila[build]'") from None
    language, manager, options = _library_capability(target)
    try:
        LambdaBuilder(language, manager, None).build(
            str(source or target.source), str(artifact), str(scratch), str(manifest),
            runtime=runtime or target.runtime, architecture=target.architecture,
            options=options or None, is_building_layer=target.layer)
    except LambdaBuilderError as exc:
        raise DeployError(f"{target.where}: the {target.method} build failed: {exc}",
                          hint="run the build's tool (pip, npm, make) in that folder to see "
                               "why") from None


# ----------------------------------------------------------------------------- Node.js


def _node_packages(packages: Mapping[str, Path]) -> dict[str, Path]:
    """The workspace packages that are npm packages: their package.json name -> folder."""
    found = {}
    for folder in packages.values():
        manifest = folder / "package.json"
        if manifest.is_file():
            name = json.loads(manifest.read_text(encoding="utf-8")).get("name")
            if isinstance(name, str):
                found[name] = folder
    return found


def _build_node(target: BuildTarget, workspace: Mapping[str, Path], artifact: Path,
                scratch: Path, log: Log) -> None:
    """npm for the registry dependencies (the workspace's own taken out of package.json, theirs
    added), then each workspace package copied into ``node_modules`` from its folder."""
    source = scratch / "source"
    _copy_tree(target.source, source, skip=("node_modules",))
    manifest = source / "package.json"
    doc = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
    deps = {k: v for k, v in (doc.get("dependencies") or {}).items() if k not in workspace}
    for folder in workspace.values():
        theirs = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        deps.update({k: v for k, v in (theirs.get("dependencies") or {}).items()
                     if k not in workspace and k not in deps})
    doc["dependencies"] = deps
    manifest.write_text(json.dumps(doc, indent=2))
    _build_with_library(target, artifact, scratch / "lib", manifest, source=source)
    for name, folder in sorted(workspace.items()):
        log(f"{target.resource}: bundling workspace package {name} from {folder.name}/")
        for rel, path in _entries(folder):
            if rel.split("/", 1)[0] == "node_modules":
                continue
            dest = artifact / "node_modules" / name / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


# ----------------------------------------------------------------------------- Python


def _build_python(target: BuildTarget, packages: Mapping[str, Path], artifact: Path,
                  cache: BuildCache, log: Log) -> None:
    runtime = target.method if target.method.startswith("python") else target.runtime
    version = runtime.removeprefix("python")
    names = {_normal(n) for n in packages}
    requirements = _requirements(target.source / "requirements.txt", names)
    for _, folder in sorted(packages.items()):
        requirements += [r for r in _pyproject_dependencies(folder) if _name(r) not in names]
    if requirements:
        _copy_tree(_dependencies(target, version, requirements, cache, log), artifact)
    _copy_tree(target.source, artifact)
    for name, folder in sorted(packages.items()):
        log(f"{target.resource}: bundling workspace package {name} from {folder.name}/")
        _install_local_package(folder, artifact)


def _dependencies(target: BuildTarget, version: str, requirements: Sequence[str],
                  cache: BuildCache, log: Log) -> Path:
    """The installed registry dependencies, cached by what pip reads (requirements, Python,
    architecture, builder): functions with the same requirements share one install, and a
    function whose code changed is not installed again."""
    document = {"format": BUILD_FORMAT, "builder": builder_version(), "python": version,
                "architecture": target.architecture, "requirements": list(requirements)}
    key = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def run(artifact: Path, scratch: Path) -> None:
        manifest = scratch / "requirements.txt"
        manifest.write_text("".join(f"{r}\n" for r in requirements))
        if version == f"{sys.version_info.major}.{sys.version_info.minor}":
            empty = scratch / "empty"
            empty.mkdir()
            _build_with_library(target, artifact, scratch / "lib", manifest,
                                f"python{version}", source=empty)
        else:
            _pip_for_lambda(target, version, manifest, artifact, log)
        _normalise(artifact)

    return cache.get_or_build(f"deps-{key}", run)


def _pip_for_lambda(target: BuildTarget, version: str, manifest: Path, artifact: Path,
                    log: Log) -> None:
    platform = f"manylinux2014_{_PIP_ARCH[target.architecture]}"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--target", str(artifact), "--platform", platform,
               "--python-version", version, "--implementation", "cp", "--only-binary=:all:",
               "-r", str(manifest)]
    log("$ " + " ".join(command[2:]))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        missing = re.search(r"No matching distribution found for (\S+)", done.stderr)
        if missing:
            raise DeployError(f"{target.where}: no wheel of '{missing.group(1)}' for Lambda "
                              f"({platform}, CPython {version})",
                              details=done.stderr[-4000:],
                              hint="pin a version that publishes a manylinux wheel for this "
                                   "Python and architecture, or drop the dependency")
        raise DeployError(f"{target.where}: pip failed installing the dependencies for "
                          f"{platform}, CPython {version}: "
                          f"{(done.stderr.strip().splitlines() or ['?'])[-1]}",
                          details=done.stderr[-4000:])


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return _normal(match.group(1)) if match else ""


def _requirements(path: Path, workspace: Iterable[str]) -> list[str]:
    """The lines of a requirements file, without those naming a workspace package."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split(" #")[0].strip()
        if text and not text.startswith("#") and _name(text) not in workspace:
            out.append(text)
    return out


def _pyproject_dependencies(folder: Path) -> list[str]:
    from mila.config import read_toml

    path = folder / "pyproject.toml"
    if not path.is_file():
        return []
    deps = (read_toml(path, str(path)).get("project") or {}).get("dependencies") or []
    return [d for d in deps if isinstance(d, str)]


_SKIPPED = {"tests", "test", "docs", "build", "dist"}


def _install_local_package(folder: Path, artifact: Path) -> None:
    """Copy a workspace package's importable modules (``src/`` layout or flat) into the build."""
    base = folder / "src" if (folder / "src").is_dir() else folder
    for entry in sorted(base.iterdir()):
        if entry.name in _SKIPPED or entry.name.startswith("."):
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            _copy_tree(entry, artifact / entry.name)
        elif entry.suffix == ".py" and entry.name not in ("setup.py", "conftest.py"):
            shutil.copyfile(entry, artifact / entry.name)


def _copy_tree(source: Path, target: Path, skip: tuple[str, ...] = ()) -> None:
    for name, path in _entries(source):
        if name.split("/", 1)[0] in skip:
            continue
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def _normalise(artifact: Path) -> None:
    """Remove what differs between machines: pip's record of where a package came from."""
    for path in artifact.glob("*.dist-info/direct_url.json"):
        path.unlink()


def build_all(targets: Sequence[BuildTarget], packages: Mapping[str, Path], cache: BuildCache,
              log: Log = _no_log) -> dict[str, Path]:
    """``{resource: artifact folder}`` for each target, built in template order."""
    return {t.resource: build_target(t, packages, cache, log) for t in targets}


def built_template(body: Mapping[str, Any], folder: Path, root: Path, packages: Mapping[str, str],
                   cache: BuildCache, log: Log = _no_log) -> dict[str, Any] | None:
    """A copy of ``body`` whose built functions and layers point at their artifact folders
    (absolute paths, packaged as any local path), or ``None`` when nothing is built."""
    targets = build_targets(body, folder)
    if not targets:
        return None
    built = build_all(targets, {n: root / p for n, p in packages.items()}, cache, log)
    copy: dict[str, Any] = json.loads(json.dumps(body))
    for target in targets:
        props = copy["Resources"][target.resource].setdefault("Properties", {})
        props[target.code_property] = str(built[target.resource])
    return copy
