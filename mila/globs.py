"""Glob patterns → regular expressions, shared by ``src`` globs and ``.gitignore`` rules.

``*`` and ``?`` never cross a ``/``; ``[...]`` is a character class (``[!...]`` or ``[^...]``
negated); ``\\x`` is a literal ``x``; a ``**`` segment matches any number of folders (the whole
rest of the path when it is last).
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def segment_regex(part: str) -> str:
    """The regex of one path segment of a glob (no ``/`` inside)."""
    out, i = [], 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(part):
            i += 1
            out.append(re.escape(part[i]))
        elif c == "[" and (end := part.find("]", i + 2)) != -1:
            body = part[i + 1:end]
            if body[0] in "!^":
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def segments_regex(parts: Sequence[str]) -> str:
    """The regex (without anchors) of a glob split on ``/``."""
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(segment_regex(part) + ("" if last else "/"))
    return "".join(out)
