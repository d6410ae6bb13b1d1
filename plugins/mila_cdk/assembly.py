"""Reading a cloud assembly (``cdk.out``): its stacks in the order of their dependencies, and
its file assets re-pointed at mila's artifacts bucket instead of the CDK's bootstrap bucket.

The CDK's default synthesizer names the bootstrap bucket
(``cdk-<qualifier>-assets-${AWS::AccountId}-${AWS::Region}``) and each asset's object key
(``<hash>.zip``, ``<hash>.json``) in the templates, and lists both in each stack's
``*.assets.json``. :func:`rewrite` replaces them in every string of a template (``Fn::Sub``
and ``Fn::Join`` forms alike) by mila's bucket and the key of the asset uploaded there; a
nested stack's template is an asset too, rewritten the same way before it is uploaded. The
``BootstrapVersion`` parameter and the ``CheckBootstrapVersion`` rule go: there is no
bootstrap stack. Docker image assets are refused (no Docker here).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mila_cloudformation.packaging import deterministic_zip

from mila.errors import DeployError

STACK_TYPE = "aws:cloudformation:stack"
BOOTSTRAP_PARAMETER = "BootstrapVersion"
BOOTSTRAP_RULE = "CheckBootstrapVersion"


@dataclass(frozen=True, slots=True)
class FileAsset:
    """One file asset: where it is in ``cdk.out`` and where the CDK meant to publish it."""

    source: Path
    packaging: str  # "zip" or "file"
    bucket: str  # as written in the templates, ``${AWS::AccountId}`` and all
    key: str


@dataclass(frozen=True, slots=True)
class Stack:
    artifact_id: str
    template: Path
    depends_on: tuple[str, ...] = ()
    cdk_name: str = ""  # the stack name the CDK used (its exports are named after it)


@dataclass
class Assembly:
    """The stacks (dependencies first) and file assets of a cloud assembly."""

    folder: Path
    stacks: list[Stack] = field(default_factory=list)
    assets: dict[str, FileAsset] = field(default_factory=dict)  # by object key


def read_assembly(folder: Path, shown: str) -> Assembly:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeployError(f"{shown}: `cdk synth` left no readable cloud assembly ({exc})",
                          hint="run `cdk synth` in the app's folder to see why") from None
    artifacts = manifest.get("artifacts") or {}
    assembly = Assembly(folder)
    stacks: dict[str, Stack] = {}
    for artifact_id, artifact in artifacts.items():
        properties = artifact.get("properties") or {}
        if artifact.get("type") == "cdk:asset-manifest":
            _read_assets(folder, folder / properties["file"], assembly, artifact_id)
        elif artifact.get("type") == STACK_TYPE:
            stacks[artifact_id] = Stack(artifact_id, folder / properties["templateFile"],
                                        tuple(artifact.get("dependencies") or ()),
                                        str(properties.get("stackName") or artifact_id))
        elif artifact.get("type") == "cdk:cloud-assembly":
            raise DeployError(f"{shown}: the app has a nested cloud assembly ({artifact_id}: a "
                              "CDK Stage), which mila does not deploy yet",
                              hint="deploy each stage's stacks as stacks of the app itself")
    assembly.stacks = _in_dependency_order(stacks, shown)
    return assembly


def _read_assets(folder: Path, path: Path, assembly: Assembly, artifact_id: str) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    images = doc.get("dockerImages") or {}
    if images:
        names = ", ".join(str(a.get("displayName") or h) for h, a in images.items())
        raise DeployError(f"{artifact_id}: Docker image assets are not supported ({names}): "
                          "mila publishes file assets only, and builds no image",
                          hint="use a zip asset (lambda.Code.fromAsset) or an image already "
                               "in a registry (ContainerImage.fromEcrRepository)")
    for asset in (doc.get("files") or {}).values():
        source = asset.get("source") or {}
        if "path" not in source:
            raise DeployError(f"{artifact_id}: a file asset built by a command "
                              f"({asset.get('displayName')}) is not supported")
        for destination in (asset.get("destinations") or {}).values():
            assembly.assets[destination["objectKey"]] = FileAsset(
                folder / source["path"], source.get("packaging", "file"),
                destination["bucketName"], destination["objectKey"])


def _in_dependency_order(stacks: dict[str, Stack], shown: str) -> list[Stack]:
    ordered: list[Stack] = []
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise DeployError(f"{shown}: the stacks depend on each other in a cycle: "
                              + " -> ".join((*path, name)))
        for dependency in stacks[name].depends_on:
            if dependency in stacks:
                visit(dependency, (*path, name))
        done.add(name)
        ordered.append(stacks[name])

    for name in stacks:
        visit(name, ())
    return ordered


# ----------------------------------------------------------------------------- rewriting

Upload = Callable[[bytes, str], str]  # (data, extension) -> key in mila's bucket


def rewrite(body: dict[str, Any], assembly: Assembly, bucket: str, upload: Upload,
            shown: str, depth: int = 0, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``body`` with its assets in ``bucket`` (each uploaded once, through ``upload``), without
    the bootstrap checks, and with the exports the CDK named after its stack names
    (``Settings:ExportsOutputRef…``) named after mila's (``names``: CDK name -> mila name), in
    ``Export.Name`` and ``Fn::ImportValue`` alike — so two environments in one region never
    share an export name."""
    if depth > 10:
        raise DeployError(f"{shown}: nested stacks more than 10 levels deep")
    body = json.loads(json.dumps(body))
    parameters = body.get("Parameters") or {}
    parameters.pop(BOOTSTRAP_PARAMETER, None)
    if not parameters:
        body.pop("Parameters", None)
    rules = body.get("Rules") or {}
    rules.pop(BOOTSTRAP_RULE, None)
    if not rules:
        body.pop("Rules", None)
    buckets = sorted({a.bucket for a in assembly.assets.values()}, key=len, reverse=True)
    keys: dict[str, str] = {}

    def new_key(old: str) -> str:
        if old not in keys:
            keys[old] = _publish(assembly.assets[old], assembly, bucket, upload, shown, depth,
                                 names)
        return keys[old]

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            old, sep, rest = value.partition(":")
            if sep and old in (names or {}):
                return f"{(names or {})[old]}:{rest}"
        return value

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            if isinstance(value.get("Export"), dict):  # an output's export
                value = {**value, "Export": {**value["Export"],
                                             "Name": rename(value["Export"].get("Name"))}}
            return {k: fix(rename(v) if k == "Fn::ImportValue" else v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str):
            for name in buckets:
                value = value.replace(name, bucket)
            for old in assembly.assets:
                if old in value:
                    value = value.replace(old, new_key(old))
        return value

    fixed: dict[str, Any] = fix(body)
    leftover = [name for name in buckets if name in json.dumps(fixed)]
    if leftover:
        raise DeployError(f"{shown}: still refers to the CDK bootstrap bucket ({leftover[0]})")
    return fixed


def _publish(asset: FileAsset, assembly: Assembly, bucket: str, upload: Upload, shown: str,
             depth: int, names: Mapping[str, str] | None) -> str:
    source = asset.source
    extension = "".join(Path(asset.key).suffixes[-1:])
    if not source.exists():
        raise DeployError(f"{shown}: the asset {source.name} is missing from the cloud assembly")
    if asset.packaging == "zip":
        data = source.read_bytes() if source.is_file() else deterministic_zip(source)
        return upload(data, extension or ".zip")
    if source.name.endswith(".template.json"):  # a nested stack: its own assets first
        child = json.loads(source.read_text(encoding="utf-8"))
        child = rewrite(child, assembly, bucket, upload, source.name, depth + 1, names)
        return upload(json.dumps(child, sort_keys=True).encode("utf-8"), extension)
    return upload(source.read_bytes(), extension)
