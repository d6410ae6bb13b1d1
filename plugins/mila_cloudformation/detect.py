"""What makes a folder a ``cloudformation`` or ``sam`` service: its template's file name, and
for ``sam`` the SAM transform in it.

Light to import (no PyYAML, no boto3): ``plugin.py`` registers these detectors at start-up, and
:mod:`.templates` reads the same names. A template is parsed only to settle a ``sam`` template
whose text names the transform (:func:`.templates.is_sam_template`, imported then).
"""

from __future__ import annotations

from pathlib import Path

#: the file names of a service's template, in the order they are looked for
TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
#: the transform of a SAM template
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def template_file(path: Path) -> Path | None:
    """The first of :data:`TEMPLATE_NAMES` in folder ``path``, or ``None``."""
    return next((path / n for n in TEMPLATE_NAMES if (path / n).is_file()), None)


def detect_cloudformation(path: Path) -> bool:
    return template_file(path) is not None


def detect_sam(path: Path) -> bool:
    template = template_file(path)
    if template is None:
        return False
    try:
        if SAM_TRANSFORM not in template.read_text(encoding="utf-8"):
            return False  # most templates: decided without parsing YAML
    except (OSError, UnicodeDecodeError):
        return False
    from .templates import is_sam_template

    return is_sam_template(template)
