"""`scopegate audit`: the audit log of credential events."""

from __future__ import annotations

from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.common import Database, names, option, with_database
from scopegate.store import audit as audit_log


@with_database
def audit(
    user: Annotated[
        str | None, option("--user", "Only events by this user (default: everyone's).")
    ] = None,
    action: Annotated[
        list[str] | None, option("--action", "Only this action, e.g. key.roll; repeatable.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many events.")] = 100,
    *,
    db: Database,
) -> None:
    """Show the audit log of credential events, newest first. It never holds a secret."""
    with db.connect() as (_, conn):
        events = audit_log.search(conn, user, actions=names(action) or None, limit=limit)
    db.show(
        {"events": [out.audit_document(e) for e in events]},
        out.Rows(
            "Audit log" + (f" of {user}" if user else ""),
            ("time", "action", "actor", "credential", "target", "client", "request id", "details"),
            [
                [
                    out.when(e.at),
                    e.action,
                    e.actor_user_id or "-",
                    f"{e.credential_kind} {e.credential_id}".strip() or "-",
                    e.target or "-",
                    e.client_address or "-",
                    e.request_id or "-",
                    e.details,
                ]
                for e in events
            ],
            no_wrap=("time", "action", "credential"),
            empty="No audit events.",
        ),
    )
