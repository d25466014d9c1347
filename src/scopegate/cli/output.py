"""What the admin commands print: Rich tables for people, one JSON document for scripts.

Nothing here ever receives a secret except `print_secret`, which the commands call once,
right after a secret is made.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from scopegate.contract.visibility import NAMES as VISIBILITY_NAMES
from scopegate.store.audit import AuditEvent
from scopegate.store.records import AppRecord, KeyRecord


def error_line(message: str) -> None:
    """`error: <message>` as one line on stderr, however long or multi-line the message."""
    line = " ".join(message.split())
    stderr = Console(stderr=True, soft_wrap=True, highlight=False)
    stderr.print(Text.assemble(("error:", "red"), " ", line))


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit: 1 for a failed operation, 2 for a usage error."""
    error_line(message)
    raise typer.Exit(code)


def emit_json(document: object) -> None:
    print(json.dumps(document))


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def when(value: datetime | None, empty: str = "-") -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else empty


def key_document(record: KeyRecord) -> dict:
    return {
        "id": record.public_id,
        "type": record.kind,
        "app": record.app_id,
        "description": record.description,
        "masked": record.masked,
        "scopes": list(record.scopes),
        "endpoints": list(record.endpoints),
        "created_at": iso(record.created_at),
        "modified_at": iso(record.modified_at),
        "last_used_at": iso(record.last_used_at),
        "expires_at": iso(record.expires_at),
    }


def app_document(record: AppRecord) -> dict:
    return {
        "id": record.app_id,
        "user_id": record.user_id,
        "name": record.name,
        "description": record.description,
        "visibility": VISIBILITY_NAMES.get(record.visibility, str(record.visibility)),
        "created_at": iso(record.created_at),
        "modified_at": iso(record.modified_at),
    }


def audit_document(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "at": iso(event.at),
        "action": event.action,
        "actor_user_id": event.actor_user_id,
        "credential_kind": event.credential_kind,
        "credential_id": event.credential_id,
        "target": event.target,
        "client_address": event.client_address,
        "request_id": event.request_id,
        "details": event.details,
    }


def _stdout() -> Console:
    # Piped output is not cut to 80 columns: a wrapped id or masked secret is useless.
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=4096)
    return console


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    no_wrap: Iterable[str] = (),
    empty: str = "Nothing to show.",
) -> None:
    rows = list(rows)
    console = _stdout()
    if not rows:
        console.print(Text(empty))
        return
    keep = set(no_wrap)
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=column in keep, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: no markup in user data
    console.print(table)


def print_message(message: str) -> None:
    _stdout().print(Text(message))


def print_secret(label: str, secret: str) -> None:
    """A new secret, on a line of its own so it can be copied; shown only this once."""
    _stdout().print(Text(f"{label} (shown once; store it safely):"))
    print(secret)
    sys.stdout.flush()


def key_rows(records: Iterable[KeyRecord]) -> list[list[str]]:
    return [
        [
            r.public_id,
            r.kind,
            r.app_id or "-",
            r.description,
            r.masked,
            ", ".join(r.scopes) or "-",
            when(r.created_at),
            when(r.last_used_at, "never"),
            when(r.expires_at, "never"),
        ]
        for r in records
    ]


KEY_COLUMNS = (
    "public id",
    "type",
    "app",
    "description",
    "masked",
    "scopes",
    "created",
    "last used",
    "expires",
)
