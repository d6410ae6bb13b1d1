""""Did you mean …?": the closest known names to a mistyped one (difflib), for error hints.

Used for environments, services, regions and commands, so every unknown name is answered the
same way: the nearest candidates when there are some, else the full list when it is short.
"""

from __future__ import annotations

from collections.abc import Iterable

#: A full list longer than this is not worth printing (38 regions are not a hint).
MAX_LISTED = 12


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name``, best first (empty when none is close)."""
    import difflib  # on errors only: not worth its import on every command

    return difflib.get_close_matches(name, sorted(set(candidates)), n=n, cutoff=0.6)


def did_you_mean(name: str, candidates: Iterable[str], what: str = "") -> str | None:
    """A hint: ``did you mean 'dev'?``, else the known names when few, else ``None``."""
    known = sorted(set(candidates))
    matches = close_matches(name, known)
    if matches:
        return "did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"
    if not known:
        return None
    if len(known) <= MAX_LISTED:
        return f"{what + ' are' if what else 'known names'}: {', '.join(known)}".strip()
    return None
