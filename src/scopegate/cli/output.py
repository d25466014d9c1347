"""What the admin commands print: Rich tables for people, one JSON document for scripts.

Nothing here ever receives a secret except a `Secret`, which a command shows once, right
after the secret is made.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def _times(record: object, *names: str) -> dict[str, str | None]:
    return {name: iso(getattr(record, name)) for name in names}


def key_document(record: KeyRecord) -> dict:
    return {
        "id": record.public_id,
        "type": record.kind,
        "app": record.app_id,
        "description": record.description,
        "masked": record.masked,
        "scopes": list(record.scopes),
        "endpoints": list(record.endpoints),
        # A fine-grained PAT's limits; None: all its user's resources.
        "resources": record.resources.names() if record.resources is not None else None,
        **_times(record, "created_at", "modified_at", "last_used_at", "expires_at"),
    }


def app_document(record: AppRecord) -> dict:
    return {
        "id": record.app_id,
        "user_id": record.user_id,
        "name": record.name,
        "description": record.description,
        "visibility": VISIBILITY_NAMES.get(record.visibility, str(record.visibility)),
        **_times(record, "created_at", "modified_at"),
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


@dataclass(frozen=True)
class Rows:
    """A table for people; `empty` is printed instead when there are no rows."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    no_wrap: Iterable[str] = ()
    empty: str = "Nothing to show."


@dataclass(frozen=True)
class Secret:
    """A new secret, on a line of its own so it can be copied; shown only this once."""

    label: str
    value: str


Shown = str | Rows | Secret


def show(as_json: bool, document: object, *text: Shown) -> None:
    """A command's answer: one JSON document for scripts, or messages, tables and secrets for
    people, in order."""
    if as_json:
        emit_json(document)
        return
    for part in text:
        if isinstance(part, Rows):
            print_table(part)
        elif isinstance(part, Secret):
            print_secret(part)
        else:
            _stdout().print(Text(part))


def print_table(rows: Rows) -> None:
    console = _stdout()
    if not rows.rows:
        console.print(Text(rows.empty))
        return
    keep = set(rows.no_wrap)
    table = Table(title=rows.title, title_justify="left")
    for column in rows.columns:
        table.add_column(column, no_wrap=column in keep, overflow="fold")
    for row in rows.rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: no markup in user data
    console.print(table)


def print_secret(secret: Secret) -> None:
    _stdout().print(Text(f"{secret.label} (shown once; store it safely):"))
    print(secret.value)
    sys.stdout.flush()


def _limits(record: KeyRecord) -> str:
    """A fine-grained PAT's limits in the table's app column: `only alice/app, org acme`."""
    if record.resources is None:
        return ""
    named = [f"{u}/{a}" for u, a in record.resources.apps]
    named += [f"org {o}" for o in record.resources.orgs]
    return "only " + ", ".join(named)


def key_rows(
    records: Iterable[KeyRecord], title: str = "", empty: str = "Nothing to show."
) -> Rows:
    """Keys as a table: public ids and masked secrets, never a secret."""
    rows = [
        [
            r.public_id,
            r.kind,
            r.app_id or _limits(r) or "-",
            r.description,
            r.masked,
            ", ".join(r.scopes) or "-",
            when(r.created_at),
            when(r.last_used_at, "never"),
            when(r.expires_at, "never"),
        ]
        for r in records
    ]
    return Rows(title, KEY_COLUMNS, rows, no_wrap=("public id", "masked"), empty=empty)


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
