"""Hook implementations of the built-in `local` plugin (filled by its issue)."""

from __future__ import annotations
