"""How the server logs: one handler on stderr, JSON lines or text, every line of a request
carrying its id (request_ids.RequestIdFilter).

`--log-format json|text` (SCOPEGATE_LOG_FORMAT): JSON by default when stderr is not a
terminal (a service manager's or a container's log collector reads it), text on one.
`--log-level` (SCOPEGATE_LOG_LEVEL, default INFO: the access log is INFO).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from scopegate.request_ids import RequestIdFilter

FORMATS = ("json", "text")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LEVEL = "INFO"
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def default_format(stream: TextIO | None = None) -> str:
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


_second: list = [-1, ""]  # the last whole second formatted, and its text


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC to the millisecond; the seconds part formatted once per second (a
    line per request makes this a hot path)."""
    created = record.created
    whole = int(created)
    if whole != _second[0]:
        _second[1] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second[0] = whole
    return f"{_second[1]}{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then an access
    line's fields (access_log.py), and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            document["request_id"] = request_id
        access = getattr(record, "access", None)
        if access:
            document.update(access)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return _encode(document)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_part)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", "")
        record.request_part = f" [{request_id}]" if request_id else ""
        return super().format(record)


def parse_format(value: str | None) -> str:
    chosen = (value or "").strip().lower() or default_format()
    if chosen not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not '{value}'")
    return chosen


def parse_level(value: str | None) -> str:
    chosen = (value or "").strip().upper() or DEFAULT_LEVEL
    if chosen not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not '{value}'")
    return chosen


def configure(log_format: str, level: str, stream: TextIO | None = None) -> None:
    """The root logger: one handler on `stream` (stderr) in `log_format`, at `level`;
    handlers set before (basicConfig's) are replaced. Third-party loggers that are chatty at
    INFO stay at WARNING."""
    # Neither format writes thread or process names: not gathering them for every record
    # (the logging HOWTO's "Optimization") saves a good part of an access line's cost.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn", "uvicorn.error", "asyncio", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
