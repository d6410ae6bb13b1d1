"""Settings come from the function's environment, set by its template from stack parameters."""

from __future__ import annotations

import os


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"the function has no {name} variable: check its template")
    return value
