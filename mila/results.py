"""The result document ``deploy``/``apply``/``remove --json`` print when they finish.

A contract for CI (documented in docs/json-output.md; change it additively)::

    {
      "version": 1,
      "command": "deploy",                 # deploy | apply | remove
      "environment": "dev",
      "status": "succeeded",               # succeeded | failed | locked | cancelled | nothing_to_do
      "exit_code": 0,
      "duration_seconds": 12.3,            # wall time of the run (0 when nothing ran)
      "plan": {...},                       # the plan, as `--only-prompt --json` prints it
      "actions": [                         # every action of the plan, in plan order
        {"service": "api", "region": "eu-west-1", "action": "deploy",
         "status": "succeeded",            # succeeded | failed | skipped | cancelled | unchanged
         "duration_seconds": 8.1, "outputs": {"Url": "..."}, "error": null,
         "log": "/repo/.mila/logs/dev/api.eu-west-1.log"}
      ]
    }

``outputs`` are those recorded after the action (for ``unchanged`` actions, the recorded ones;
``{}`` after a destroy or a failure); ``log`` is ``null`` for actions that did not run.
"""

from __future__ import annotations

from typing import Any

from mila.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK, LockHeld, MilaError
from mila.model import ActionKind, Status
from mila.orchestrator import RunReport

RESULT_VERSION = 1


def run_status(report: RunReport | None) -> tuple[str, int]:
    """The run's status and the exit code the CLI ends with."""
    if report is None:
        return "nothing_to_do", EXIT_OK
    if report.cancelled:  # by Ctrl-C, or SIGTERM/SIGHUP: 128 + the signal
        return "cancelled", 128 + report.signal if report.signal else EXIT_INTERRUPTED
    failed = report.by_status(Status.FAILED)
    if failed and all(isinstance(o.error, LockHeld) for o in failed):
        return "locked", EXIT_LOCKED
    if failed:
        return "failed", EXIT_FAILED
    return "succeeded", EXIT_OK


def _error(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return str(error) if isinstance(error, MilaError) else f"{type(error).__name__}: {error}"


def _blocked(key: Any) -> str | None:
    """Why a skipped action did not run: the failed action it waited for."""
    return f"{key[0]} in {key[1]} failed" if isinstance(key, tuple) else None


def result_document(command: str, prepared: Any, report: RunReport | None,
                    plan_json: dict[str, Any], log_path: Any) -> dict[str, Any]:
    """``log_path(action)`` gives the log file of an action that ran."""
    status, code = run_status(report)
    actions = []
    for a in prepared.plan.actions:
        outcome = report.outcomes.get(a.key) if report is not None else None
        record = prepared.records.get(a.key)
        if outcome is None:
            outputs = dict(record.outputs) if record is not None and not a.kind.changes else {}
            actions.append({"service": a.service, "region": a.region, "action": a.kind.value,
                            "status": Status.CANCELLED.value if a.kind.changes else "unchanged",
                            "duration_seconds": 0.0, "outputs": outputs, "error": None,
                            "log": None})
            continue
        result = outcome.result
        ran = outcome.started_at is not None
        actions.append({
            "service": a.service, "region": a.region, "action": a.kind.value,
            "status": outcome.status.value, "duration_seconds": round(outcome.duration, 3),
            "outputs": dict(getattr(result, "outputs", None) or {})
            if outcome.ok and a.kind is not ActionKind.DESTROY else {},  # ok: or already done
            "error": _error(outcome.error) or _blocked(outcome.blocked_by),
            "log": str(log_path(a)) if ran else None,
        })
    return {"version": RESULT_VERSION, "command": command, "environment": prepared.plan.environment,
            "status": status, "exit_code": code,
            "duration_seconds": round(report.wall_seconds, 3) if report is not None else 0.0,
            "plan": plan_json, "actions": actions}


def plan_markdown(prepared: Any) -> str:
    """The plan as Markdown, ready for a pull-request comment: one row per service, one
    column per region, then the counts."""
    plan = prepared.plan
    regions = plan.columns()
    cells: dict[str, dict[str, str]] = {}
    for a in plan.actions:
        cells.setdefault(a.service, {})[a.region] = a.kind.value
    lines = [f"### mila plan for `{plan.environment}`", ""]
    if cells:
        lines += ["| service | " + " | ".join(regions) + " |",
                  "|---|" + "---|" * len(regions)]
        for service in sorted(cells):
            row = [f"**{k}**" if k in ("first_deploy", "deploy", "destroy") else k
                   for k in (cells[service].get(r, "-") for r in regions)]
            lines.append(f"| {service} | " + " | ".join(row) + " |")
        lines.append("")
    deploys = plan.count(ActionKind.FIRST_DEPLOY, ActionKind.DEPLOY)
    lines.append(f"{deploys} to deploy, {plan.count(ActionKind.NO_CHANGES)} unchanged, "
                 f"{plan.count(ActionKind.DESTROY)} to destroy")
    return "\n".join(lines) + "\n"
