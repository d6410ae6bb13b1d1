"""Hook implementations of the built-in `sandbox` plugin (filled by its issue)."""

from __future__ import annotations
