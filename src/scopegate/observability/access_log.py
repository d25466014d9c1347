"""The access log: one line per request, on the logger `scopegate.access` at INFO.

Fields: time (the record's), request id, transport, method, Clarifai status code, HTTP status
(REST), latency, the caller's user id, the credential's public id, the client address. Never
a secret or a body: only what the dispatcher established (the principal's public ids) and the
transport's peer. The fields travel as `record.access` (a dict), which the JSON formatter
(logs.py) writes as they are; the text formatter writes the message.
"""

from __future__ import annotations

import logging

from scopegate.dispatch import Outcome
from scopegate.observability.metrics import code_name, http_status_of

log = logging.getLogger("scopegate.access")


FORMAT = "%s %s %s %s %s %.1fms user=%s credential=%s client=%s"


class AccessLog:
    """An observer of the dispatcher writing one line per request."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger

    def observe(self, outcome: Outcome) -> None:
        logger = self._log
        if not logger.isEnabledFor(logging.INFO):  # cached by logging: nearly free when off
            return
        call = outcome.call
        principal = outcome.principal
        code = outcome.code
        fields = {
            "request_id": outcome.request_id,
            "transport": call.transport or "internal",
            "method": call.spec.name,
            "code": code,
            "status": code_name(code),
            "http_status": http_status_of(outcome),
            "latency_ms": round((outcome.finished - outcome.started) * 1000, 3),
            "user_id": principal.user_id if principal else "",
            "credential_id": principal.credential_id if principal else "",
            "client": call.peer,
        }
        args = (
            fields["transport"],
            fields["method"],
            fields["status"],
            code,
            fields["http_status"] or "-",
            fields["latency_ms"],
            fields["user_id"] or "-",
            fields["credential_id"] or "-",
            call.peer or "-",
        )
        # The record made here and handed to the logger's handlers: `logger.info` would also
        # look up its caller's frame, a third of a line's cost, for a line whose origin is
        # known.
        record = logging.LogRecord(logger.name, logging.INFO, __file__, 0, FORMAT, args, None)
        record.access = fields
        record.request_id = outcome.request_id
        logger.handle(record)
