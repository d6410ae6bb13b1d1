"""``--region R[,R]``: which regions of an environment a command works on.

Checked before anything is locked or written: each name must be an AWS region (with "did you
mean") and one of the environment's regions.
"""

from __future__ import annotations

from typing import Any

from mila.environments import parse_regions
from mila.errors import MilaError
from mila.model import Environment
from mila.suggest import did_you_mean


def select_regions(env: Environment, text: str | None) -> tuple[str, ...] | None:
    """The regions ``--region`` names (``None`` when not given: every region)."""
    if text is None:
        return None
    regions = parse_regions(text)
    for region in regions:
        if region not in env.regions:
            raise MilaError(f"environment '{env.name}' has no region {region}",
                            hint=did_you_mean(region, env.regions, "its regions")
                            or f"its regions: {', '.join(env.regions)}")
    return regions


def restrict_plan_file(saved: dict[str, Any], regions: tuple[str, ...]) -> dict[str, Any]:
    """A saved plan narrowed to ``regions``: its actions there, re-planned with that scope."""
    options = dict(saved.get("options") or {})
    planned = options.get("regions")
    if planned is not None:
        outside = sorted(set(regions) - set(planned))
        if outside:
            raise MilaError(f"the plan does not cover {', '.join(outside)}",
                            hint=f"it was made for {', '.join(planned)}")
    options["regions"] = sorted(regions)
    return {**saved, "options": options,
            "actions": [a for a in saved["actions"] if a["region"] in regions]}
