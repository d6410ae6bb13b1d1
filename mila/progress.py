"""Progress of a run: a live view on a terminal, timestamped plain lines elsewhere (CI logs).

Part of the UI layer: the orchestrator and deployers report through it (phase changes, lock
waits, outcomes); nothing else prints while actions run. Thread-safe: every method may be called
from worker threads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from mila.model import Action, Status

STATUS_STYLE = {
    Status.SUCCEEDED: "green", Status.FAILED: "red", Status.SKIPPED: "yellow",
    Status.CANCELLED: "yellow", Status.IN_PROGRESS: "cyan",
}


class ProgressView:
    """One line per action. Use as a context manager around the run."""

    def __init__(self, actions: Sequence[Action], console: Console, live: bool) -> None:
        self.console = console
        self.live_mode = live
        self.lock = threading.Lock()
        self.rows: dict[tuple[str, str], dict[str, Any]] = {
            a.key: {"action": a, "status": "pending", "phase": "waiting", "message": "",
                    "start": None, "end": None}
            for a in actions
        }
        self._live: Live | None = None

    def __enter__(self) -> ProgressView:
        if self.live_mode:
            self._live = Live(self._render(), console=self.console, refresh_per_second=8,
                              transient=False, get_renderable=self._render)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    # ------------------------------------------------------------- events

    def started(self, key: tuple[str, str]) -> None:
        with self.lock:
            row = self.rows[key]
            row["status"], row["start"], row["phase"] = "running", time.monotonic(), "starting"
        self._line(key, "started")

    def phase(self, key: tuple[str, str], phase: str, message: str = "") -> None:
        with self.lock:
            row = self.rows[key]
            changed = row["phase"] != phase
            row["phase"], row["message"] = phase, message
        if changed:
            self._line(key, f"{phase}{': ' + message if message else ''}")

    def waiting_for_lock(self, key: tuple[str, str], holder: Any) -> None:
        from mila.locks import describe_holder

        self.phase(key, "waiting for lock", f"held by {describe_holder(holder)}")

    def finished(self, key: tuple[str, str], status: Status, message: str = "") -> None:
        with self.lock:
            row = self.rows[key]
            row["status"], row["end"], row["message"] = status, time.monotonic(), message
            row["phase"] = status.value
        # a failure's message is printed once, in the summary at the end (stderr)
        shown = "" if status is Status.FAILED else message
        self._line(key, f"{status.value}{' — ' + shown if shown else ''}")

    # ------------------------------------------------------------- rendering

    def _line(self, key: tuple[str, str], text: str) -> None:
        if self.live_mode:
            return
        a = self.rows[key]["action"]
        stamp = datetime.now().strftime("%H:%M:%S")
        with self.lock:
            self.console.print(f"{stamp} {a.service} {a.region} {a.kind.value}: {text}",
                               highlight=False, markup=False)

    def _render(self) -> Table:
        # one line per action, never wider than the terminal: long cells are cut with "…"
        t = Table(show_header=False, box=None, pad_edge=False, expand=False)
        for i in range(6):
            t.add_column(no_wrap=True, overflow="ellipsis", min_width=1,
                         ratio=1 if i == 4 else None)
        now = time.monotonic()
        with self.lock:
            for row in self.rows.values():
                a: Action = row["action"]
                status = row["status"]
                if status == "running":
                    icon: Any = Spinner("dots")
                elif isinstance(status, Status):
                    icon = Text("✓" if status is Status.SUCCEEDED else "✗",
                                style=STATUS_STYLE[status])
                else:
                    icon = Text("·", style="dim")
                elapsed = ""
                if row["start"] is not None:
                    elapsed = f"{(row['end'] or now) - row['start']:.0f}s"
                phase = Text(row["phase"])
                if row["message"]:
                    phase.append(f"  {row['message'][:80]}", style="dim")
                t.add_row(icon, a.service, a.region, a.kind.value, phase,
                          Text(elapsed, style="dim"))
        return t


def use_live_view(console: Console, log_format: str = "console",
                  environ: Mapping[str, str] | None = None) -> bool:
    """The live view only on a terminal, for people: plain timestamped lines when the output
    is not a terminal, logs are JSON, or ``CI`` or ``NO_COLOR`` is set."""
    env = os.environ if environ is None else environ
    return console.is_terminal and log_format == "console" \
        and not env.get("CI") and "NO_COLOR" not in env
