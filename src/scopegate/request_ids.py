"""Request ids: the client's prefix, the id of the request being served, and the logging
filter that puts it on every log line of that request.

The official clients send `x-clarifai-request-id-prefix` (the SDK `sdk-python-<version>`,
the JSON channel `python-json-<version>`); Clarifai's ids begin with it, and so do ours. It
comes from the client, so it is cut to `MAX_PREFIX` characters of `[A-Za-z0-9._-]` before
it reaches a response header or a log line. The id of the request being served lives in a
context variable: each gRPC call and each HTTP request runs in a task of its own, and
`asyncio.to_thread` copies the context, so handler threads see it too.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

PREFIX_HEADER = "x-clarifai-request-id-prefix"
RESPONSE_HEADER = "x-request-id"
MAX_PREFIX = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

current: ContextVar[str] = ContextVar("scopegate_request_id", default="")


def sanitized_prefix(raw: str | None) -> str:
    """The client's prefix as it may appear in an id: safe characters only (others are
    dropped), at most MAX_PREFIX of them, no leading or trailing separator."""
    if not raw:
        return ""
    return _UNSAFE.sub("", raw[: MAX_PREFIX * 4])[:MAX_PREFIX].strip("-.")


class RequestIdFilter(logging.Filter):
    """Sets `record.request_id` to the id of the request being served ("" outside one).
    Attach it to a handler, so records of every logger that reach it carry the id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current.get()
        return True
