"""Reading CloudFormation templates: YAML (with the short-form tags) and JSON.

A template is parsed the way CloudFormation parses it: ``!Ref X`` becomes ``{"Ref": "X"}``,
``!GetAtt A.B`` becomes ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub``/``!Join``/… become their
``Fn::`` long forms, and YAML timestamps stay strings (``AWSTemplateFormatVersion:
2010-09-09`` is not a date). Duplicate keys are refused, as CloudFormation refuses them. Every
syntax error is a :class:`DeployError` naming the file and the line, raised before anything is
sent to AWS.

Templates are sent in a canonical form — JSON, every intrinsic in its long form
(:func:`dump_template`) — whether or not packaging changed them: CloudFormation accepts it
unchanged, ``Transform`` included, and no server (AWS, the sandbox, another emulator) has to
parse YAML short-form tags, which some parse wrongly (``!ImportValue`` over a ``Fn::Sub:``
mapping). The templates users keep stay as they wrote them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mila.errors import DeployError

from .detect import SAM_TRANSFORM, TEMPLATE_NAMES

#: Short-form tags whose long form is ``{"Fn::<name>": value}``.
_FN_TAGS = ("Base64", "Cidr", "FindInMap", "GetAZs", "ImportValue", "Join", "Select", "Split",
            "Sub", "Transform", "And", "Equals", "If", "Not", "Or", "Contains",
            "EachMemberEquals", "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll", "Length",
            "ToJsonString", "GetAtt")


@dataclass(frozen=True)
class Template:
    """A parsed template: ``body`` is the document, ``text`` the file as written."""

    path: Path
    shown: str  # the path as shown to users (relative to the project root)
    text: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def transforms(self) -> tuple[str, ...]:
        return transforms_of(self.body)

    @property
    def is_sam(self) -> bool:
        return SAM_TRANSFORM in self.transforms

    @property
    def parameters(self) -> Mapping[str, Any]:
        params = self.body.get("Parameters") or {}
        return params if isinstance(params, dict) else {}


def transforms_of(body: Mapping[str, Any]) -> tuple[str, ...]:
    value = body.get("Transform")
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


# ----------------------------------------------------------------------------- YAML loading


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader with CloudFormation's tags, no timestamps, and duplicate keys refused."""


# CloudFormation keeps ``2010-09-09`` a string: drop the timestamp resolver from our loader.
_TemplateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _fn(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_node(loader, node)
        if name == "GetAtt" and isinstance(value, str):
            # !GetAtt Resource.Attribute (the attribute itself may contain dots)
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
        return {f"Fn::{name}": value}

    return construct


def _ref(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Ref": _construct_node(loader, node)}


def _condition(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Condition": _construct_node(loader, node)}


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: construct_mapping reports it properly
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


for _name in _FN_TAGS:
    _TemplateLoader.add_constructor(f"!{_name}", _fn(_name))
_TemplateLoader.add_constructor("!Ref", _ref)
_TemplateLoader.add_constructor("!Condition", _condition)
_TemplateLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                _mapping_without_duplicates)


def parse_text(text: str, shown: str) -> dict[str, Any]:
    """Parse template ``text`` (JSON or YAML); errors name ``shown`` and the line."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeployError(f"{shown}, line {exc.lineno}: invalid JSON: {exc.msg} "
                              f"(column {exc.colno})",
                              hint="fix the syntax at the line shown") from None
    else:
        try:
            body = yaml.load(text, Loader=_TemplateLoader)  # a SafeLoader subclass: safe
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            column = mark.column + 1 if mark is not None else 0
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            raise DeployError(f"{shown}, line {line}: invalid YAML: {problem} "
                              f"(column {column})",
                              hint="fix the syntax at the line shown (often its indentation, "
                                   "or a bracket or quote left open above it)") from None
        except yaml.YAMLError as exc:
            raise DeployError(f"{shown}: invalid YAML template: {exc}",
                              hint="fix the syntax of the template") from None
    if not isinstance(body, dict):
        raise DeployError(f"{shown}: a template must be a mapping with a Resources section, "
                          f"got {type(body).__name__}")
    resources = body.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise DeployError(f"{shown}: the template has no Resources",
                          hint="a CloudFormation template needs at least one resource")
    return body


def find_template(folder: Path, configured: str | None = None) -> Path | None:
    """The template of a workspace folder: ``configured`` (relative to it) or the first of
    ``template.yaml``, ``template.yml``, ``template.json``."""
    if configured:
        path = folder / configured
        return path if path.is_file() else None
    for name in TEMPLATE_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def load_template(path: Path, root: Path) -> Template:
    try:
        shown = path.relative_to(root).as_posix()
    except ValueError:
        shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DeployError(f"{shown}: a template must be UTF-8 text") from None
    except OSError as exc:
        raise DeployError(f"{shown}: cannot read the template: {exc.strerror}") from None
    return Template(path=path, shown=shown, text=text, body=parse_text(text, shown))


_SAM_TEXT = re.compile(r"^\s*[\"']?Transform[\"']?\s*:.*", re.MULTILINE)


def is_sam_template(path: Path) -> bool:
    """Whether the template at ``path`` uses the SAM transform. Never raises: a template that
    does not parse is judged by its text (its deploy then reports the syntax error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if SAM_TRANSFORM not in text:
        return False
    try:
        return SAM_TRANSFORM in transforms_of(parse_text(text, path.name))
    except DeployError:
        return bool(_SAM_TEXT.search(text))


# ----------------------------------------------------------------------------- writing


def dump_template(body: Mapping[str, Any]) -> str:
    """The template in canonical form: JSON with long-form intrinsics, keys in the template's
    order (deterministic), non-ASCII text kept as written."""
    return json.dumps(dict(body), indent=1, ensure_ascii=False, default=str) + "\n"
