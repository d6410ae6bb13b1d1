"""Hook implementations of the built-in `aws` plugin (filled by its issue)."""

from __future__ import annotations
