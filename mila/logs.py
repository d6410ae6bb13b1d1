"""structlog set-up: console lines for people, JSON lines for CI (``--log-format json``).

Logs go to stderr so that ``--json`` outputs on stdout stay parseable. Get a logger with
:func:`get_logger` and bind context (``env``, ``service``, ``region``) with ``.bind(...)``.

structlog is imported on the first log call, not at start-up: importing it costs 100–200 ms
(it pulls in ``rich``'s traceback machinery), and most commands never log.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, TextIO, cast

_settings: dict[str, Any] = {"verbose": 0, "log_format": "console"}
_configured = False
_lock = threading.Lock()


def configure_logging(verbose: int = 0, log_format: str = "console") -> None:
    """Choose the level and format; applied now if structlog is loaded, else at the first log."""
    global _configured
    with _lock:
        _settings.update(verbose=verbose, log_format=log_format)
        _configured = False
    if "structlog" in sys.modules:
        _ensure_configured()


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is *now*: while the live progress view runs, rich
    swaps it for a proxy that prints above the view, so a log line never breaks it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _drop_shown(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Console logs skip events the CLI already shows people (``shown_by_cli=True``, such as
    a failed action, printed once in the summary); JSON logs keep them for machines."""
    import structlog

    if event.pop("shown_by_cli", False):
        raise structlog.DropEvent
    return event


def _strip_shown(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event.pop("shown_by_cli", None)
    return event


def _ensure_configured() -> Any:
    global _configured
    import structlog

    with _lock:
        if _configured:
            return structlog
        verbose, log_format = _settings["verbose"], _settings["log_format"]
        level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
        processors: list[Any] = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ]
        processors.append(_drop_shown if log_format == "console" else _strip_shown)
        if log_format == "json":
            processors += [structlog.processors.format_exc_info,
                           structlog.processors.JSONRenderer()]
        else:
            processors += [structlog.dev.ConsoleRenderer(colors=False)]
        structlog.configure(
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(file=cast("TextIO", _CurrentStderr())),
            cache_logger_on_first_use=False,
        )
        _configured = True
    return structlog


class LazyLogger:
    """A structlog logger created on first use; ``bind`` returns another lazy logger."""

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}

    def bind(self, **context: Any) -> LazyLogger:
        return LazyLogger(self._name, {**self._context, **context})

    def __getattr__(self, method: str) -> Any:
        structlog = _ensure_configured()
        return getattr(structlog.get_logger(self._name).bind(**self._context), method)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)
