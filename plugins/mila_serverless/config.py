"""What mila reads of a ``serverless.yml`` itself, without the framework: the service's name
(to find its stack when a first deploy failed before the framework named it). Only plain YAML
is read: ``serverless.ts``/``.js`` and ``${...}`` values are left to the framework."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation tags (``!Ref``…) as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def read(path: Path | None) -> dict[str, Any]:
    """The document, or ``{}`` when it is not plain YAML (the framework reports real errors)."""
    if path is None or path.suffix not in (".yml", ".yaml"):
        return {}
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def service_name(path: Path | None) -> str | None:
    """``service:`` when it is a plain name (no ``${...}``)."""
    value = read(path).get("service")
    if isinstance(value, dict):
        value = value.get("name")
    return value if isinstance(value, str) and "${" not in value else None
