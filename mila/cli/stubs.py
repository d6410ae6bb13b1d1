"""Commands whose issue has not landed yet: they say so and exit non-zero."""

from __future__ import annotations

from mila.errors import MilaError


def not_implemented(command: str) -> None:
    raise MilaError(f"`mila {command}` is not implemented yet")
