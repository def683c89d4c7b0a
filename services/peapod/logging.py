"""Logging set-up, done once per process.

Components log events with bound context (``pod="default/db", uid=...``), never
sentences. On a terminal the console renderer is easier for a human; anywhere
else (systemd, files, CI) every line is one JSON object an operator can grep
or ship. Secrets are never passed to a logger, so no redaction step exists.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(*, component: str, level: str | None = None, json: bool | None = None) -> None:
    """Configure structlog and the stdlib root logger for one process."""
    level_name = (level or os.environ.get("PEAPOD_LOG_LEVEL", "info")).upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(component=component)
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
