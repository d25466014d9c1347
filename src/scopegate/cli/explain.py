"""`scopegate explain REQ_ID`: why a request was refused, for the operator (in full)."""

from __future__ import annotations

from typing import Annotated

import typer

from scopegate.auth import explanations
from scopegate.cli.common import Database, with_database
from scopegate.contract.status import does_not_exist
from scopegate.store import refusals


@with_database
def explain(
    request_id: Annotated[
        str,
        typer.Argument(
            help="The refused request's id (status.req_id, or the X-Request-Id header).",
            show_default=False,
        ),
    ],
    *,
    db: Database,
) -> None:
    """Explain a refusal: the deciding layer, the facts it used and a one-line fix.

    Refusals are written within seconds and kept 7 days (SCOPEGATE_REFUSAL_DAYS).
    """
    with db.connect() as (_, conn):
        record = refusals.get(conn, request_id.strip())
        if record is None:
            raise does_not_exist(
                f"No refusal recorded as {request_id}: unknown, not refused, older than the "
                "records are kept, or not written yet (try again in a few seconds)."
            )
    fix = explanations.fix(record.layer, record.missing)
    target = "/".join(p for p in (record.target_user, record.target_app) if p) or "-"
    credential = f"{record.credential_kind} {record.credential_id}".strip() or "-"
    db.show(
        {
            "request_id": record.request_id,
            "at": record.at.isoformat(),
            "method": record.method,
            "target": {"user_id": record.target_user, "app_id": record.target_app},
            "caller_user_id": record.caller_user,
            "credential": {"type": record.credential_kind, "id": record.credential_id},
            "client_address": record.client_address,
            "layer": record.layer,
            "code": record.code,
            "description": record.description,
            "details": record.details,
            "required_scopes": list(record.required),
            "held_scopes": list(record.held),
            "missing_scopes": list(record.missing),
            "fix": fix,
        },
        f"Request {record.request_id} ({record.method} on {target}) was refused at "
        f"{record.at:%Y-%m-%d %H:%M:%S} UTC by the {record.layer} layer: {record.code} "
        f"{record.description}.",
        f"Caller: {record.caller_user or '-'}, credential {credential}, from "
        f"{record.client_address or '-'}.",
        *([f"Details: {record.details}"] if record.details else []),
        f"Required scopes: {', '.join(record.required) or 'none'}; held: "
        f"{', '.join(record.held) or '-'}; missing: {', '.join(record.missing) or 'none'}.",
        f"Fix: {fix}",
    )
