"""Hook implementations of the built-in `cloudformation` plugin (filled by its issue)."""

from __future__ import annotations
