"""Refusal records: every refused request, by its request id, for "why was I denied"
(`GET /scopegate/v1/denials/{req_id}`, `scopegate explain`, the portal).

An observer of the dispatcher (dispatch.py's `Outcome`): on a refusal it appends one tuple
to a bounded queue, and nothing else on the request path; the deciding layer and the scope
facts (auth/explanations.py) are worked out when the queue is written, in batches, with the
last-use times (access/invalidation.py). Records are kept `ttl_days` (7 by default) and at
most `capacity` rows; never the secret: the credential's public id, never its value.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from scopegate.auth import explanations
from scopegate.contract.status import C
from scopegate.store import refusals
from scopegate.store.refusals import RefusalRecord

# A handler's own failures (validation, a missing input) are no refusal; these are: an app
# its request names elsewhere, authorized as if named in `user_app_id`.
_HANDLER_REFUSALS = frozenset({C.CONN_INSUFFICIENT_SCOPES, C.CONN_KEY_INVALID})
_STAGES = frozenset({"authentication", "authorization", "policy", "limits"})
PURGE_SECONDS = 60.0


class RefusalRecorder:
    def __init__(
        self,
        engine: Engine,
        *,
        ttl_days: float = 7.0,
        capacity: int = 1_000_000,
        queue: int = 50_000,
    ) -> None:
        self._engine = engine
        self.ttl = timedelta(days=ttl_days)
        self.capacity = capacity
        # Refusals not yet written: a flood drops the oldest rather than grow.
        self._pending: deque[tuple] = deque(maxlen=queue)
        self._next_purge = 0.0

    def observe(self, outcome: Any) -> None:
        error = outcome.error
        if error is None:
            return
        stage = outcome.stage
        if stage not in _STAGES and not (
            stage == "handler"
            and (
                error.code in _HANDLER_REFUSALS
                or (error.code == C.CONN_DOES_NOT_EXIST and not error.details)
            )
        ):
            return
        call, target = outcome.call, outcome.target
        spec = call.spec
        if target is not None:
            user_id, app_id = target.user_id, target.app_id
        elif spec.has_user_app_id:
            ids = call.request.user_app_id
            user_id, app_id = ids.user_id, ids.app_id
        else:
            user_id = app_id = ""
        # Small parts only: the outcome holds the request, which may be large.
        self._pending.append(
            (
                outcome.request_id,
                time.time(),
                spec,
                stage,
                # Not the exception: its traceback would keep the request's frames alive.
                (error.code, error.description, error.details),
                outcome.principal,
                user_id,
                app_id,
                call.peer,
            )
        )

    def pending(self, request_id: str) -> RefusalRecord | None:
        """A refusal of this process not written yet (the API answers it before the flush)."""
        for queued in reversed(self._pending):
            if queued[0] == request_id:
                return _record(*queued)
        return None

    def flush(self) -> None:
        """Write what is queued, and now and then drop what is past its time or capacity."""
        taken = []
        while self._pending:
            taken.append(self._pending.popleft())
        if taken:
            rows = _rows(taken)
            with self._engine.begin() as conn:
                refusals.insert_many(conn, rows)
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_SECONDS
            with self._engine.begin() as conn:
                refusals.purge(conn, datetime.now(UTC) - self.ttl, self.capacity)


def _rows(taken: list[tuple]) -> list[refusals.Row]:
    """Rows for a batch: refusals repeat (one caller, one method, one target), so each
    distinct refusal is explained once per batch and its rows share that."""
    explained: dict[tuple, tuple] = {}
    rows = []
    for request_id, at, spec, stage, status, principal, user_id, app_id, peer in taken:
        key = (spec, stage, status, principal, user_id, app_id)
        shared = explained.get(key)
        if shared is None:
            record = _record("", at, spec, stage, status, principal, user_id, app_id, "")
            shared = explained[key] = refusals.shared_values(record)
        rows.append((request_id, at, peer[:64], shared))
    return rows


def _record(
    request_id: str,
    at: float,
    spec: Any,
    stage: str,
    status: tuple[int, str, str],
    principal: Any,
    user_id: str,
    app_id: str,
    peer: str,
) -> RefusalRecord:
    code, description, details = status
    facts = explanations.explain(
        explanations.Refused(spec, stage, code, details, principal, user_id, app_id)
    )
    return RefusalRecord(
        request_id=request_id,
        at=datetime.fromtimestamp(at, UTC),
        method=spec.name[:128],
        target_user=user_id[:64],
        target_app=app_id[:64],
        caller_user=principal.user_id if principal else "",
        credential_kind=principal.kind.value if principal else "",
        credential_id=principal.credential_id if principal else "",
        client_address=peer[:64],
        layer=facts.layer,
        code=code,
        description=description[:255],
        details=details[:2000],
        required=facts.required,
        held=facts.held,
        missing=facts.missing,
    )
