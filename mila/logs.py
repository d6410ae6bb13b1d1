"""structlog set-up: console lines for people, JSON lines for CI (``--log-format json``).

Logs go to stderr so that ``--json`` outputs on stdout stay parseable. Bind context
(``env``, ``service``, ``region``) with ``structlog.get_logger().bind(...)``.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(verbose: int = 0, log_format: str = "console") -> None:
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
