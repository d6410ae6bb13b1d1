"""What mila reads of a ``serverless.yml`` itself, without the framework: the service's name
(to find its stack when a first deploy failed before the framework named it) and the
``package.patterns`` that reach outside its folder (checksum inputs). Only plain YAML
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


def outside_patterns(path: Path | None) -> list[str]:
    """The ``package.patterns`` (service-wide and per function) that reach outside the
    service's folder (``../shared/**``): the framework packages those files too."""
    doc = read(path)
    found: list[str] = []
    packages = [doc.get("package")]
    functions = doc.get("functions")
    if isinstance(functions, dict):
        packages += [f.get("package") for f in functions.values() if isinstance(f, dict)]
    for package in packages:
        patterns = package.get("patterns") if isinstance(package, dict) else None
        if isinstance(patterns, list):
            found += [p for p in patterns if isinstance(p, str) and p.startswith("../")]
    return found
