"""The build phase of the ``sam``/``cloudformation`` deployers: what a template builds, the
build cache, and real builds (pip from PyPI: marked slow)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from mila_cloudformation.build import (
    BuildCache,
    BuildTarget,
    build_key,
    build_target,
    build_targets,
    built_template,
)
from mila_cloudformation.packaging import deterministic_zip
from mila_cloudformation.templates import parse_text

from mila.errors import DeployError

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Architectures: [arm64]
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: py, Handler: app.h}
  Node:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: node, Handler: app.h, Runtime: nodejs20.x, Architectures: [x86_64]}
  NodeNoManifest:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: plain, Handler: app.h, Runtime: nodejs20.x}
  Bundled:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: esbuild
      BuildProperties: {Minify: true, EntryPoints: [app.ts]}
    Properties: {CodeUri: ts, Handler: app.h, Runtime: nodejs20.x}
  Image:
    Type: AWS::Serverless::Function
    Properties: {PackageType: Image, ImageUri: repo:tag}
  Inline:
    Type: AWS::Serverless::Function
    Properties: {InlineCode: "x", Handler: a.h}
  Remote:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: s3://bucket/key.zip, Handler: a.h}
  Layer:
    Type: AWS::Serverless::LayerVersion
    Metadata: {BuildMethod: python3.11}
    Properties: {ContentUri: layer, CompatibleArchitectures: [arm64]}
  PlainLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer2}
  Plain:
    Type: AWS::Lambda::Function
    Properties: {Code: plainpy, Handler: a.h, Runtime: python3.12, Role: r}
  PlainS3:
    Type: AWS::Lambda::Function
    Properties: {Code: {S3Bucket: b, S3Key: k}, Handler: a.h, Runtime: python3.12, Role: r}
"""


def test_build_targets_follow_sam_build(tmp_path) -> None:
    for folder in ("py", "node", "plain", "ts", "layer", "layer2", "plainpy"):
        (tmp_path / folder).mkdir()
    (tmp_path / "node/package.json").write_text("{}")
    targets = {t.resource: t for t in build_targets(parse_text(TEMPLATE, "t"), tmp_path)}
    (tmp_path / "plainpy").rmdir()  # a missing folder is not built: the packager names it
    assert "Plain" not in {t.resource for t in build_targets(parse_text(TEMPLATE, "t"), tmp_path)}
    assert set(targets) == {"Py", "Node", "Bundled", "Layer", "Plain"}
    assert targets["Plain"].where == "Plain.Code" and targets["Plain"].architecture == "x86_64"
    py = targets["Py"]
    assert (py.runtime, py.method, py.architecture, py.source) == \
        ("python3.12", "python3.12", "arm64", tmp_path / "py")  # Globals honoured
    assert targets["Node"].architecture == "x86_64" and targets["Node"].method == "nodejs20.x"
    assert targets["Bundled"].method == "esbuild"
    assert targets["Bundled"].properties == {"Minify": True, "EntryPoints": ["app.ts"]}
    layer = targets["Layer"]
    assert layer.layer and layer.runtime == "python3.11" and layer.architecture == "arm64"
    assert layer.where == "Layer.ContentUri"


def _target(tmp_path: Path, **kw) -> BuildTarget:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "app.py").write_text("def h(e, c): return 1\n")
    return BuildTarget("Fn", source, "python3.12", "python3.12", **kw)


def test_the_build_key_follows_every_input_and_not_the_location(tmp_path) -> None:
    target = _target(tmp_path)
    pkg = tmp_path / "pkg"
    (pkg / "common").mkdir(parents=True)
    (pkg / "common/__init__.py").write_text("V = 1\n")
    key = build_key(target, {"common": pkg})
    assert build_key(target, {"common": pkg}) == key
    assert build_key(_target(tmp_path, architecture="arm64"), {"common": pkg}) != key
    assert build_key(_target(tmp_path, properties={"x": 1}), {"common": pkg}) != key
    (pkg / "common/__init__.py").write_text("V = 2\n")
    assert build_key(target, {"common": pkg}) != key
    before = build_key(target, {})
    (target.source / "requirements.txt").write_text("six\n")
    assert build_key(target, {}) != before
    # the same files in another folder: the same key (no absolute path in it)
    moved = tmp_path / "elsewhere" / "src"
    moved.parent.mkdir()
    target.source.rename(moved)
    key_moved = build_key(BuildTarget("Fn", moved, "python3.12", "python3.12"), {})
    moved.rename(target.source)
    assert build_key(target, {}) == key_moved


def test_a_python_build_bundles_workspace_packages_and_is_cached(tmp_path) -> None:
    target = _target(tmp_path)
    (target.source / "requirements.txt").write_text("# only workspace packages\ncommon\n")
    pkg = tmp_path / "packages/common"
    (pkg / "src/common").mkdir(parents=True)
    (pkg / "src/common/__init__.py").write_text("V = 1\n")
    (pkg / "tests").mkdir()
    (pkg / "tests/test_x.py").write_text("")
    (pkg / "pyproject.toml").write_text('[project]\nname = "common"\ndependencies = []\n')
    cache = BuildCache(tmp_path / "cache")
    first = build_target(target, {"common": pkg}, cache)  # nothing for pip: no network
    assert sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()) == \
        ["app.py", "common/__init__.py", "requirements.txt"]
    again = build_target(target, {"common": pkg}, cache)
    assert again == first and (cache.builds, cache.hits) == (1, 1)
    (pkg / "src/common/__init__.py").write_text("V = 2\n")
    third = build_target(target, {"common": pkg}, cache)
    assert third != first and (third / "common/__init__.py").read_text() == "V = 2\n"


def test_the_cache_drops_the_least_recently_used_builds_over_its_cap(tmp_path) -> None:
    cache = BuildCache(tmp_path / "cache", cap_bytes=2500)

    def make(size: int):
        def build(artifact: Path, scratch: Path) -> None:
            (artifact / "blob").write_bytes(b"x" * size)
        return build

    a = cache.get_or_build("a", make(1000))
    os.utime(a.parent, (1, 1))
    cache.get_or_build("b", make(1000))
    cache.get_or_build("c", make(1000))  # over 2500: a, the oldest, goes
    assert not a.exists()
    assert (tmp_path / "cache/b").exists() and (tmp_path / "cache/c").exists()


def test_a_failed_build_leaves_nothing_in_the_cache(tmp_path) -> None:
    cache = BuildCache(tmp_path / "cache")

    def broken(artifact: Path, scratch: Path) -> None:
        (artifact / "half").write_text("x")
        raise DeployError("boom")

    with pytest.raises(DeployError):
        cache.get_or_build("k", broken)
    assert list((tmp_path / "cache").iterdir()) == []


def test_built_template_points_functions_at_their_artifacts(tmp_path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/app.py").write_text("x = 1\n")
    body = parse_text("Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
                      "    Type: AWS::Serverless::Function\n"
                      "    Properties: {CodeUri: src, Handler: app.h, Runtime: python3.12}\n", "t")
    built = built_template(body, tmp_path, tmp_path, {}, BuildCache(tmp_path / "cache"))
    code = Path(built["Resources"]["Fn"]["Properties"]["CodeUri"])
    assert code.is_absolute() and (code / "app.py").is_file()
    assert body["Resources"]["Fn"]["Properties"]["CodeUri"] == "src"  # the original is kept
    queue = parse_text("Resources: {Q: {Type: AWS::SQS::Queue}}\n", "t")
    assert built_template(queue, tmp_path, tmp_path, {}, BuildCache(tmp_path / "cache")) is None


def _zip_names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


@pytest.mark.slow
def test_a_python312_function_gets_lambda_wheels_on_another_python(tmp_path) -> None:
    """pip from PyPI: six (pure), for arm64 and CPython 3.12 on this interpreter."""
    target = _target(tmp_path, architecture="arm64")
    (target.source / "requirements.txt").write_text("six==1.17.0\n")
    cache = BuildCache(tmp_path / "cache")
    first = build_target(target, {}, cache)
    names = {p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()}
    assert {"app.py", "six.py", "six-1.17.0.dist-info/METADATA"} <= names
    # reproducible: a second build from scratch zips to the same bytes
    zipped = deterministic_zip(first)
    again = build_target(target, {}, BuildCache(tmp_path / "cache2"))
    assert deterministic_zip(again) == zipped
    assert "six.py" in _zip_names(zipped)
    # the code changes, the requirements do not: pip is not run again (its install is shared)
    assert cache.builds == 2  # the dependencies, then the function
    (target.source / "app.py").write_text("def h(e, c): return 2\n")
    rebuilt = build_target(target, {}, cache)
    assert cache.builds == 3 and cache.hits == 1
    assert (rebuilt / "six.py").is_file() and "return 2" in (rebuilt / "app.py").read_text()


@pytest.mark.slow
def test_a_dependency_without_a_lambda_wheel_is_named_with_the_platform(tmp_path) -> None:
    target = _target(tmp_path, architecture="arm64")
    (target.source / "requirements.txt").write_text("psycopg2==2.9.9\n")
    with pytest.raises(DeployError) as info:
        build_target(target, {}, BuildCache(tmp_path / "cache"))
    assert "psycopg2==2.9.9" in str(info.value)
    assert "manylinux2014_aarch64, CPython 3.12" in str(info.value)
    assert not any((tmp_path / "cache").iterdir())


@pytest.mark.slow
def test_the_local_python_version_builds_with_aws_lambda_builders(tmp_path) -> None:
    import sys

    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("import six\n")
    (source / "requirements.txt").write_text("six==1.17.0\n")
    built = build_target(BuildTarget("Fn", source, runtime, runtime), {},
                         BuildCache(tmp_path / "cache"))
    assert (built / "six.py").is_file() and (built / "app.py").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not __import__("shutil").which("npm"), reason="needs npm")
def test_a_node_function_gets_npm_dependencies_and_workspace_packages(tmp_path) -> None:
    """npm from the registry: ms; the workspace package @shop/common copied from its folder."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.js").write_text("exports.handler = async () => require('@shop/common')\n")
    (source / "package.json").write_text(
        '{"name": "web", "version": "1.0.0", "dependencies": {"@shop/common": "*"}}')
    common = tmp_path / "packages/common"
    common.mkdir(parents=True)
    (common / "index.js").write_text("module.exports = require('ms')('1h')\n")
    (common / "package.json").write_text(
        '{"name": "@shop/common", "version": "1.0.0", "dependencies": {"ms": "2.1.3"}}')
    target = BuildTarget("Fn", source, "nodejs20.x", "nodejs20.x")
    built = build_target(target, {"common": common}, BuildCache(tmp_path / "cache"))
    assert (built / "app.js").is_file()
    assert (built / "node_modules/@shop/common/index.js").read_text() == \
        "module.exports = require('ms')('1h')\n"
    assert (built / "node_modules/ms/package.json").is_file()  # the package's own dependency
