"""Packaging, like ``aws cloudformation package``: local paths in a template become S3 locations.

The properties the AWS CLI (and SAM CLI) package are listed in :data:`RULES`: ``CodeUri`` of a
SAM function, ``Code`` of a Lambda function, ``Content`` of a layer, API definitions, state
machine definitions, nested stack templates (packaged recursively), ``AWS::Include`` locations…
A folder is zipped; a file is uploaded as it is, or zipped alone when the property needs a zip
(a handler file for ``CodeUri``). A property holding an S3 location, an intrinsic function or
inline code is left alone.

Zips are deterministic — entries sorted, timestamps fixed to 1980-01-01, permissions fixed to
0644 (0755 for executables), no directory entries, no ``__pycache__`` — so the same sources give
the same bytes on every machine, and the same S3 key: objects are keyed by the sha256 of their
content, and an object already in the bucket is never uploaded again.

The artifacts bucket is ``mila-artifacts-<account>-<region>``, created on first use with the
state bucket's security settings (versioning, default encryption, public access blocked,
TLS-only policy), and every call names the expected owner so a bucket someone else created
under that name is refused. ``[project].artifacts_bucket`` overrides it (``${region}`` and
``${account}`` are substituted); mila then uses that bucket as it is and creates nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mila_aws.buckets import ensure_tls_only_policy

from mila.errors import DeployError

from .templates import dump_template, load_template

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: Never packaged: caches and VCS metadata differ between machines and runs.
EXCLUDED_NAMES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".DS_Store", ".mila",
                            ".aws-sam", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
Log = Callable[[str], None]
#: How deep nested templates may go.
MAX_NESTING = 10


def _no_log(line: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    """One packaged property: ``path`` inside ``Properties``; ``form`` is ``url``
    (``s3://bucket/key``), ``dict`` (``{bucket_key: bucket, key_key: key}``) or ``template``
    (a nested template, uploaded packaged; an ``https://`` URL)."""

    resource_type: str
    path: tuple[str, ...]
    form: str
    force_zip: bool = False
    bucket_key: str = "Bucket"
    key_key: str = "Key"
    #: package the template's folder when the property is missing (the CLIs do for code)
    package_missing: bool = False


RULES: tuple[Rule, ...] = (
    Rule("AWS::Serverless::Function", ("CodeUri",), "url", force_zip=True, package_missing=True),
    Rule("AWS::Serverless::LayerVersion", ("ContentUri",), "url", force_zip=True,
         package_missing=True),
    Rule("AWS::Serverless::Api", ("DefinitionUri",), "url"),
    Rule("AWS::Serverless::HttpApi", ("DefinitionUri",), "url"),
    Rule("AWS::Serverless::StateMachine", ("DefinitionUri",), "dict"),
    Rule("AWS::Serverless::Application", ("Location",), "template"),
    Rule("AWS::Lambda::Function", ("Code",), "dict", force_zip=True, bucket_key="S3Bucket",
         key_key="S3Key"),
    Rule("AWS::Lambda::LayerVersion", ("Content",), "dict", force_zip=True, bucket_key="S3Bucket",
         key_key="S3Key"),
    Rule("AWS::ApiGateway::RestApi", ("BodyS3Location",), "dict"),
    Rule("AWS::ApiGatewayV2::Api", ("BodyS3Location",), "dict"),
    Rule("AWS::AppSync::GraphQLSchema", ("DefinitionS3Location",), "url"),
    Rule("AWS::AppSync::Resolver", ("RequestMappingTemplateS3Location",), "url"),
    Rule("AWS::AppSync::Resolver", ("ResponseMappingTemplateS3Location",), "url"),
    Rule("AWS::AppSync::Resolver", ("CodeS3Location",), "url"),
    Rule("AWS::AppSync::FunctionConfiguration", ("RequestMappingTemplateS3Location",), "url"),
    Rule("AWS::AppSync::FunctionConfiguration", ("ResponseMappingTemplateS3Location",), "url"),
    Rule("AWS::AppSync::FunctionConfiguration", ("CodeS3Location",), "url"),
    Rule("AWS::ElasticBeanstalk::ApplicationVersion", ("SourceBundle",), "dict",
         bucket_key="S3Bucket", key_key="S3Key"),
    Rule("AWS::StepFunctions::StateMachine", ("DefinitionS3Location",), "dict"),
    Rule("AWS::CodeCommit::Repository", ("Code", "S3"), "dict", force_zip=True),
    Rule("AWS::Glue::Job", ("Command", "ScriptLocation"), "url"),
    Rule("AWS::CloudFormation::Stack", ("TemplateURL",), "template"),
)


# ----------------------------------------------------------------------------- zips


def _entries(folder: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, file) for every file under ``folder``, following symlinks, sorted."""
    found: list[tuple[str, Path]] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_NAMES]
        for name in filenames:
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(dirpath) / name
            if not path.is_file():  # a dangling symlink, a socket…
                continue
            found.append((path.relative_to(folder).as_posix(), path))
    yield from sorted(found)


def _add(archive: zipfile.ZipFile, name: str, path: Path) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = 3  # unix, so the permission bits below are honoured
    executable = os.stat(path).st_mode & stat.S_IXUSR
    info.external_attr = ((stat.S_IFREG | (0o755 if executable else 0o644)) << 16)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, path.read_bytes(), compresslevel=6)


def deterministic_zip(source: Path) -> bytes:
    """Zip a folder (its contents at the archive's root) or a single file, deterministically."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if source.is_dir():
            for name, path in _entries(source):
                _add(archive, name, path)
        else:
            _add(archive, source.name, source)
    return buffer.getvalue()


def artifact_bytes(source: Path, force_zip: bool) -> tuple[bytes, str]:
    """The bytes to upload for a local path and the key's extension."""
    if source.is_dir():
        return deterministic_zip(source), ".zip"
    if force_zip and not zipfile.is_zipfile(source):
        return deterministic_zip(source), ".zip"
    return source.read_bytes(), "".join(source.suffixes[-1:])


# ----------------------------------------------------------------------------- finding paths


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "://" not in value


def _get(properties: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = properties
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set(properties: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = properties
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


@dataclass(frozen=True, slots=True)
class LocalArtifact:
    """A property of a resource that names a local path."""

    resource: str  # a logical id, or "Globals.Function"
    rule: Rule
    value: str  # as written ("." when the property was missing)

    @property
    def where(self) -> str:
        return f"{self.resource}.{'.'.join(self.rule.path)}"

    def properties(self, body: dict[str, Any]) -> dict[str, Any]:
        """The mapping of ``body`` that holds the property."""
        if self.resource == GLOBALS_FUNCTION:
            return body["Globals"]["Function"]  # type: ignore[no-any-return]
        return body["Resources"][self.resource].setdefault("Properties", {})  # type: ignore[no-any-return]


GLOBALS_FUNCTION = "Globals.Function"
#: SAM's ``Globals: Function: CodeUri`` is packaged like a function's own ``CodeUri``.
GLOBALS_RULE = Rule("Globals", ("CodeUri",), "url", force_zip=True)


def local_artifacts(body: dict[str, Any]) -> list[LocalArtifact]:
    """Every property of ``body`` that names a local path, in template order."""
    globals_code = _get(body.get("Globals") or {}, ("Function", "CodeUri"))
    found: list[LocalArtifact] = []
    if _is_local(globals_code):
        found.append(LocalArtifact(GLOBALS_FUNCTION, GLOBALS_RULE, globals_code))
    for name, resource in (body.get("Resources") or {}).items():
        if not isinstance(resource, dict):
            continue
        properties = resource.get("Properties")
        for rule in RULES:
            if resource.get("Type") != rule.resource_type:
                continue
            value = _get(properties, rule.path) if isinstance(properties, dict) else None
            if value is None and rule.package_missing and not _inline(properties) \
                    and globals_code is None:
                value = "."
            if _is_local(value):
                found.append(LocalArtifact(name, rule, value))
    return found


def _inline(properties: Any) -> bool:
    """Code that is not a path: inline code or a container image."""
    if not isinstance(properties, dict):
        return False
    return any(k in properties for k in ("InlineCode", "ImageUri")) or \
        properties.get("PackageType") == "Image"


def _includes(node: Any) -> Iterator[dict[str, Any]]:
    """The parameters of every ``AWS::Include`` transform with a local ``Location``."""
    if isinstance(node, dict):
        transform = node.get("Fn::Transform")
        if isinstance(transform, dict) and transform.get("Name") == "AWS::Include":
            params = transform.get("Parameters")
            if isinstance(params, dict) and _is_local(params.get("Location")):
                yield params
        for value in node.values():
            yield from _includes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _includes(value)


def _top_level_includes(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    transforms = body.get("Transform")
    for item in transforms if isinstance(transforms, list) else [transforms]:
        if isinstance(item, dict) and item.get("Name") == "AWS::Include":
            params = item.get("Parameters")
            if isinstance(params, dict) and _is_local(params.get("Location")):
                yield params


# ----------------------------------------------------------------------------- the bucket


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class ArtifactStore:
    """An S3 bucket where packaged artifacts live, keyed by content hash.

    ``owned`` means mila made up the name and creates and secures the bucket; otherwise the
    bucket was configured and is used as it is. ``client`` is an S3 client in ``region``.
    """

    def __init__(self, s3: Any, bucket: str, region: str, *, prefix: str,
                 account: str | None = None, owned: bool = True) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.region = region
        self.prefix = prefix.strip("/")
        self.account = account
        self.owned = owned
        self.uploaded: list[str] = []
        self.reused: list[str] = []
        self._ready = False
        self._lock = threading.Lock()
        # keys known to be in the bucket, and one lock per key: worker threads packaging the
        # same code upload it once
        self._present: set[str] = set()
        self._key_locks: dict[str, threading.Lock] = {}

    def _owner(self) -> dict[str, str]:
        return {"ExpectedBucketOwner": self.account} if self.owned and self.account else {}

    def ensure(self, log: Log = _no_log) -> None:
        """Create and secure the bucket if mila owns it (once per store)."""
        with self._lock:
            if self._ready:
                return
            if self.owned:
                self._create_and_secure(log)
            else:
                self._check_configured()
            self._ready = True

    def _check_configured(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise DeployError(f"the artifacts bucket '{self.bucket}' ([project]."
                                  f"artifacts_bucket) does not exist in {self.region}",
                                  hint="create it, or remove artifacts_bucket from mila.toml to "
                                       "let mila create one per account and region") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise DeployError(f"the artifacts bucket '{self.bucket}' cannot be used by this "
                                  "identity", hint="check the bucket's policy and your "
                                                   "permissions") from None
            raise

    def _create_and_secure(self, log: Log) -> None:
        s3, bucket, owner = self.s3, self.bucket, self._owner()
        try:
            s3.head_bucket(Bucket=bucket, **owner)
            exists = True
        except Exception as exc:
            code = _error_code(exc)
            if code in ("403", "AccessDenied", "Forbidden"):
                raise DeployError(f"the S3 bucket '{bucket}' exists but does not belong to this "
                                  "account (bucket names are global)",
                                  hint="set [project].artifacts_bucket in mila.toml to a bucket "
                                       "of yours") from None
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise
            exists = False
        if not exists:
            args: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                s3.create_bucket(**args)
                log(f"created the artifacts bucket {bucket}")
            except Exception as exc:
                if _error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise
        if s3.get_bucket_versioning(Bucket=bucket, **owner).get("Status") != "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"},
                                     **owner)
        try:
            s3.get_bucket_encryption(Bucket=bucket, **owner)
        except Exception as exc:
            if _error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                           "BucketKeyEnabled": True}]}, **owner)
        block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                 "RestrictPublicBuckets": True}
        try:
            current = s3.get_public_access_block(Bucket=bucket, **owner)[
                "PublicAccessBlockConfiguration"]
        except Exception as exc:
            if _error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            current = {}
        if any(not current.get(k) for k in block):
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block, **owner)
        ensure_tls_only_policy(s3, bucket, **owner)

    def put(self, data: bytes, extension: str, log: Log = _no_log) -> str:
        """Upload ``data`` under its content hash unless it is already there; returns the key."""
        self.ensure(log)
        digest = hashlib.sha256(data).hexdigest()
        key = f"{self.prefix}/{digest}{extension}" if self.prefix else f"{digest}{extension}"
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key in self._present or self._exists(key):
                self._present.add(key)
                self.reused.append(key)
                log(f"artifact s3://{self.bucket}/{key} already uploaded")
                return key
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **self._owner())
            self._present.add(key)
        self.uploaded.append(key)
        log(f"uploaded s3://{self.bucket}/{key} ({len(data)} bytes)")
        return key

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key, **self._owner())
            return True
        except Exception as exc:
            # 403 is what S3 answers for a missing key without s3:ListBucket
            if _error_code(exc) not in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
                raise
            return False

    def https_url(self, key: str) -> str:
        """The object's URL, as CloudFormation's ``TemplateURL`` takes it."""
        domain = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        if "." in self.bucket:  # a dotted name breaks virtual-hosted TLS: path style
            return f"https://s3.{self.region}.{domain}/{self.bucket}/{key}"
        return f"https://{self.bucket}.s3.{self.region}.{domain}/{key}"


# ----------------------------------------------------------------------------- packaging


def needs_packaging(body: dict[str, Any]) -> bool:
    """Whether ``body`` names any local path to package."""
    return bool(local_artifacts(body)) or any(_includes(body)) or any(_top_level_includes(body))


def package_template(body: dict[str, Any], folder: Path, root: Path, store: ArtifactStore,
                     *, shown: str = "template", depth: int = 0,
                     log: Log = _no_log) -> tuple[dict[str, Any], bool]:
    """Replace every local path in ``body`` (relative to ``folder``) by its S3 location.

    Returns the packaged template (a new document; ``body`` is not modified) and whether
    anything was replaced.
    """
    if not needs_packaging(body):
        return body, False
    artifacts = local_artifacts(body)
    if depth > MAX_NESTING:
        raise DeployError(f"{shown}: nested templates more than 10 levels deep")
    packaged: dict[str, Any] = json.loads(json.dumps(body))  # a deep copy of plain data
    built: dict[tuple[Path, bool], str] = {}

    def upload(value: str, where: str, force_zip: bool) -> str:
        source = (folder / value).resolve()
        if not source.exists():
            raise DeployError(f"{shown}: {where} refers to '{value}', which does not exist "
                              f"(looked for {_shown(source, root)})",
                              hint="fix the path (relative to the template's folder), or use "
                                   "an s3:// location")
        if (source, force_zip) not in built:
            data, extension = artifact_bytes(source, force_zip)
            built[(source, force_zip)] = store.put(data, extension, log)
        return built[(source, force_zip)]

    for artifact in artifacts:
        properties = artifact.properties(packaged)
        rule = artifact.rule
        if rule.form == "template":
            key = _package_nested(artifact.value, folder, root, store, artifact.where, depth, log)
            _set(properties, rule.path, store.https_url(key))
            continue
        key = upload(artifact.value, artifact.where, rule.force_zip)
        if rule.form == "url":
            _set(properties, rule.path, f"s3://{store.bucket}/{key}")
        else:
            _set(properties, rule.path, {rule.bucket_key: store.bucket, rule.key_key: key})
    for params in list(_includes(packaged)) + list(_top_level_includes(packaged)):
        key = upload(params["Location"], "AWS::Include Location", False)
        params["Location"] = f"s3://{store.bucket}/{key}"
    return packaged, True


def _package_nested(value: str, folder: Path, root: Path, store: ArtifactStore, where: str,
                    depth: int, log: Log) -> str:
    path = (folder / value).resolve()
    if not path.is_file():
        raise DeployError(f"{where} refers to the template '{value}', which does not exist "
                          f"(looked for {_shown(path, root)})")
    child = load_template(path, root)
    body, _ = package_template(child.body, path.parent, root, store, shown=child.shown,
                                     depth=depth + 1, log=log)
    return store.put(dump_template(body).encode("utf-8"), ".template", log)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
