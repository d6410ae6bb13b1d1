"""A plugin for tests of the run-time hooks: vetoes plans that destroy anything (a policy
check), and records ``mila_action_started``/``mila_action_finished`` to ``$MILA_EVENTS``.
Every hook also reads the ``project`` mila hands it (``project.config.name``)."""

from __future__ import annotations

import json
import os
import threading

from mila import hookimpl
from mila.api import Project
from mila.model import Action, ActionKind, Plan, Status

_lock = threading.Lock()


def _record(entry: dict[str, object]) -> None:
    with _lock, open(os.environ["MILA_EVENTS"], "a") as f:
        f.write(json.dumps(entry) + "\n")


@hookimpl
def mila_plan_ready(plan: Plan, project: Project) -> list[str]:
    destroys = [a for a in plan.actions if a.kind is ActionKind.DESTROY]
    return [f"{a.service} in {a.region} would be destroyed from {project.config.name}"
            for a in destroys]


@hookimpl
def mila_action_started(action: Action, project: Project) -> None:
    _record({"hook": "started", "service": action.service, "region": action.region,
             "project": project.config.name})


@hookimpl
def mila_action_finished(action: Action, status: Status, error: str | None,
                         project: Project) -> None:
    _record({"hook": "finished", "service": action.service, "region": action.region,
             "status": status.value, "error": error, "project": project.config.name})
