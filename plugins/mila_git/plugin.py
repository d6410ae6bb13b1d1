"""Hook implementations of the built-in `git` plugin (filled by its issue)."""

from __future__ import annotations
