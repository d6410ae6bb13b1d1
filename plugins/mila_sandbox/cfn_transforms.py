"""The transforms CloudFormation applies before the SAM one: ``AWS::Include`` and
``AWS::LanguageExtensions``.

**AWS**: when a change set is created (or a stack created or updated), CloudFormation first
replaces every ``Fn::Transform: {Name: AWS::Include, Parameters: {Location: s3://…}}`` (and a
top-level ``Transform: {Name: AWS::Include, …}``) with the snippet read from S3 — typically an
OpenAPI ``DefinitionBody`` — then applies ``AWS::LanguageExtensions`` (``Fn::ForEach``
expanded, ``Fn::Length`` counted, ``Fn::ToJsonString`` rendered), then the SAM transform.
``GetTemplate`` returns the template as sent, or processed.

**plain moto**: ``Fn::Transform`` is kept as a property value (the API it defines is silently
not created, and outputs keep a literal ``${…}``); ``Transform: AWS::LanguageExtensions``
fails with HTTP 500.

**here**: :func:`apply` does both with the request's parameter values. ``Fn::ForEach`` is
expanded by cfn-lint's implementation of the transform (the parameters' values are given to
it as their defaults); ``Fn::Length`` of a list or a list parameter and ``Fn::ToJsonString``
(intrinsics inside kept, joined in) are resolved here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

INCLUDE = "AWS::Include"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
_PLACEHOLDER = "__mila_sandbox_intrinsic_{}__"


def _validation_error(message: str) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    return ValidationError(message=message)


def transform_names(template: dict[str, Any]) -> list[str]:
    declared = template.get("Transform")
    names = declared if isinstance(declared, list) else [declared] if declared else []
    return [n if isinstance(n, str) else str((n or {}).get("Name")) for n in names]


def apply(template: dict[str, Any], parameters: dict[str, Any], account_id: str,
          region: str) -> tuple[dict[str, Any], bool]:
    """``template`` with includes and language extensions applied; whether anything was."""
    names = transform_names(template)
    unknown = [n for n in names if n not in (INCLUDE, LANGUAGE_EXTENSIONS, SAM_TRANSFORM)]
    if unknown:
        raise _validation_error(f"No transform named {account_id}::{unknown[0]} found.")
    included = _expand_includes(template, account_id, region)
    changed = included is not template
    declared = template.get("Transform")
    if isinstance(declared, (dict, list)):  # a top-level include: merged into the template
        for entry in declared if isinstance(declared, list) else [declared]:
            if isinstance(entry, dict) and entry.get("Name") == INCLUDE:
                snippet = _read_include(entry, account_id, region)
                if not isinstance(snippet, dict):
                    raise _validation_error("Template format error: an AWS::Include at the top "
                                            "level must include a mapping")
                included = {**included, **snippet}
                changed = True
    if LANGUAGE_EXTENSIONS in names:
        included = _language_extensions(included, parameters)
        changed = True
    if changed:
        kept = [n for n in names if n not in (INCLUDE, LANGUAGE_EXTENSIONS)]
        included = {k: v for k, v in included.items() if k != "Transform"}
        if kept:
            included["Transform"] = kept[0] if len(kept) == 1 else kept
    return included, changed


# ----------------------------------------------------------------------------- AWS::Include


def _read_include(spec: dict[str, Any], account_id: str, region: str) -> Any:
    from moto.cloudformation.models import Stack
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    from mila_sandbox.cfn_template_urls import bucket_and_key

    location = str(((spec.get("Parameters") or {}).get("Location")) or "")
    found = bucket_and_key(location)
    try:
        if found is None:
            raise KeyError(location)
        key = s3_backends[account_id][get_partition(region)].get_object(*found)
        return Stack.parse_template(key.value.decode("utf-8"))
    except Exception:
        raise _validation_error(f"Transform {INCLUDE} failed with: The location parameter "
                                f"{location!r} is not a valid S3 uri, or the object cannot "
                                "be read.") from None


def _expand_includes(node: Any, account_id: str, region: str) -> Any:
    if isinstance(node, list):
        items = [_expand_includes(item, account_id, region) for item in node]
        return node if all(a is b for a, b in zip(items, node, strict=True)) else items
    if not isinstance(node, dict):
        return node
    spec = node.get("Fn::Transform")
    if isinstance(spec, dict) and spec.get("Name") == INCLUDE:
        snippet = _expand_includes(_read_include(spec, account_id, region), account_id, region)
        rest = {k: v for k, v in node.items() if k != "Fn::Transform"}
        return {**rest, **snippet} if rest and isinstance(snippet, dict) else snippet
    items = {k: _expand_includes(v, account_id, region) for k, v in node.items()}
    return node if all(items[k] is node[k] for k in node) else items


# ----------------------------------------------------------------------------- extensions


def _language_extensions(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    from cfnlint.template import Template
    from cfnlint.template.transforms._language_extensions import language_extension

    given = copy.deepcopy(template)
    for name, spec in (given.get("Parameters") or {}).items():
        if name in parameters and isinstance(spec, dict):
            spec["Default"] = parameters[name]  # cfn-lint resolves parameters by default
    given["Transform"] = [LANGUAGE_EXTENSIONS]
    matches, expanded = language_extension(Template(None, given, regions=["us-east-1"]))
    if matches or expanded is None:
        message = "; ".join(str(m.message) for m in matches) or "the template cannot be expanded"
        raise _validation_error(f"Transform {LANGUAGE_EXTENSIONS} failed with: {message}")
    expanded["Parameters"] = template.get("Parameters") or {}
    if not expanded["Parameters"]:
        del expanded["Parameters"]
    return dict(_functions(expanded, _list_parameters(template, parameters)))


def _list_parameters(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, list[Any]]:
    lists = {}
    for name, spec in (template.get("Parameters") or {}).items():
        kind = str((spec or {}).get("Type", ""))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            value = parameters.get(name, (spec or {}).get("Default", ""))
            lists[name] = value if isinstance(value, list) else \
                [v.strip() for v in str(value).split(",")] if str(value) else []
    return lists


def _functions(node: Any, lists: dict[str, list[Any]]) -> Any:
    """``Fn::Length`` and ``Fn::ToJsonString`` resolved, bottom up."""
    if isinstance(node, list):
        return [_functions(item, lists) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: _functions(v, lists) for k, v in node.items()}
    if set(node) == {"Fn::Length"}:
        value = node["Fn::Length"]
        if isinstance(value, list):
            return len(value)
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in lists:
            return len(lists[value["Ref"]])
        raise _validation_error("Template error: Fn::Length requires a list or a reference "
                                "to a list parameter")
    if set(node) == {"Fn::ToJsonString"}:
        return _to_json(node["Fn::ToJsonString"])
    return node


def _is_intrinsic(node: Any) -> bool:
    if not isinstance(node, dict) or len(node) != 1:
        return False
    key = next(iter(node))
    return key == "Ref" or key.startswith("Fn::")


def _to_json(value: Any) -> Any:
    """The JSON text of ``value``; a ``Fn::Join`` when intrinsics inside are resolved later."""
    found: list[Any] = []

    def swap(node: Any) -> Any:
        if _is_intrinsic(node):
            found.append(node)
            return _PLACEHOLDER.format(len(found) - 1)
        if isinstance(node, list):
            return [swap(item) for item in node]
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        return node

    text = json.dumps(swap(value), separators=(",", ":"))
    if not found:
        return text
    parts: list[Any] = []
    for index, intrinsic in enumerate(found):
        before, text = text.split(_PLACEHOLDER.format(index), 1)
        parts.extend([before, intrinsic])
    parts.append(text)
    return {"Fn::Join": ["", [p for p in parts if p != ""]]}


def install() -> None:
    """Nothing to patch: :mod:`mila_sandbox.cfn_stacks` calls :func:`apply`."""
