"""Each action's log on this machine, kept per action so ``mila logs --action N`` finds it.

A run writes ``.mila/logs/<env>/<service>.<region>.log`` (the last action there); when the
action ends, a private copy is kept as
``.mila/action-logs/<env>/<service>.<region>.<UTC stamp>.log``.
``mila logs -e ENV SERVICE --action N`` takes the N-th newest history entry of the service and
shows the kept log written when that entry was (within :data:`MATCH_SECONDS`): history is
shared by every machine, logs are not, so a run from elsewhere has none here.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mila.model import Action
from mila.private import open_private, private_dirs

STAMP = "%Y%m%dT%H%M%S.%fZ"
#: how far a kept log's stamp may be from its history entry's time
MATCH_SECONDS = 120


def logs_dir(mila_dir: Path, environment: str) -> Path:
    return mila_dir / "logs" / environment


def kept_dir(mila_dir: Path, environment: str) -> Path:
    return mila_dir / "action-logs" / environment


def current_log(mila_dir: Path, environment: str, service: str, region: str) -> Path:
    return logs_dir(mila_dir, environment) / f"{service}.{region}.log"


def keep(mila_dir: Path, action: Action, when: datetime | None = None) -> Path | None:
    """Copy the action's log to the kept ones; ``None`` when it wrote none."""
    source = current_log(mila_dir, action.environment, action.service, action.region)
    if not source.is_file():
        return None
    stamp = (when or datetime.now(timezone.utc)).strftime(STAMP)
    folder = private_dirs(kept_dir(mila_dir, action.environment), mila_dir)
    target = folder / f"{action.service}.{action.region}.{stamp}.log"
    with source.open("rb") as src, open_private(target) as out:
        shutil.copyfileobj(src, out.buffer)
    return target


def kept_log(mila_dir: Path, environment: str, service: str, region: str,
             at: datetime) -> Path | None:
    """The kept log written closest to ``at`` (within :data:`MATCH_SECONDS`)."""
    folder = kept_dir(mila_dir, environment)
    best: tuple[float, Path] | None = None
    for path in folder.glob(f"{service}.{region}.*.log"):
        try:
            stamp = datetime.strptime(path.name[len(service) + len(region) + 2:-4], STAMP)
        except ValueError:
            continue
        distance = abs((stamp.replace(tzinfo=timezone.utc) - at).total_seconds())
        if distance <= MATCH_SECONDS and (best is None or distance < best[0]):
            best = (distance, path)
    return best[1] if best else None


class KeepingReporter:
    """A :class:`mila.deploy.Reporter` that keeps each action's log when it ends, then passes
    every event on to ``inner`` (the progress view)."""

    def __init__(self, inner: Any, mila_dir: Path, actions: Mapping[tuple[str, str], Action]):
        self.inner, self.mila_dir, self.actions = inner, mila_dir, actions
        self.started_keys: set[tuple[str, str]] = set()

    def started(self, key: tuple[str, str]) -> None:
        self.started_keys.add(key)
        self.inner.started(key)

    def phase(self, key: tuple[str, str], phase: str, message: str = "") -> None:
        self.inner.phase(key, phase, message)

    def waiting_for_lock(self, key: tuple[str, str], holder: Any) -> None:
        self.inner.waiting_for_lock(key, holder)

    def finished(self, key: tuple[str, str], status: Any, message: str = "") -> None:
        if key in self.started_keys and key in self.actions:  # a skipped action wrote no log
            keep(self.mila_dir, self.actions[key])
        self.inner.finished(key, status, message)
