"""Collaborators: users granted scopes on another user's app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select, update

from scopegate.store.records import json_strings, now, row_reader, stored_grant
from scopegate.store.rows import every, insert_created, one, touched
from scopegate.store.schema import apps, collaborators, users


@dataclass(frozen=True, slots=True)
class CollaboratorRecord:
    public_id: str
    app_pk: int
    owner_user_id: str
    app_id: str
    user_id: str
    email: str
    scopes: tuple[str, ...]
    endpoints: tuple[str, ...]
    created_at: datetime
    modified_at: datetime


def _select():
    return select(
        collaborators.c.public_id,
        collaborators.c.app_pk,
        apps.c.user_id.label("owner_user_id"),
        apps.c.app_id,
        collaborators.c.user_id,
        users.c.email,
        collaborators.c.scopes,
        collaborators.c.endpoints,
        collaborators.c.created_at,
        collaborators.c.modified_at,
    ).select_from(
        collaborators.join(apps, collaborators.c.app_pk == apps.c.id).join(
            users, collaborators.c.user_id == users.c.user_id
        )
    )


# Built once: this runs on every relation lookup (see relations.py).
_GRANT = _select().where(
    collaborators.c.user_id == bindparam("user_id"),
    apps.c.user_id == bindparam("owner_user_id"),
    apps.c.app_id == bindparam("app_id"),
)


_record = row_reader(CollaboratorRecord, scopes=json_strings, endpoints=json_strings)


def add(
    conn: Connection,
    *,
    public_id: str,
    app_pk: int,
    user_id: str,
    scopes: Iterable[str],
    endpoints: Iterable[str],
) -> None:
    insert_created(
        conn,
        collaborators,
        now(),
        public_id=public_id,
        app_pk=app_pk,
        user_id=user_id,
        **stored_grant(scopes, endpoints),
    )


def _list(conn: Connection, condition, offset: int, limit: int) -> list[CollaboratorRecord]:
    query = _select().where(condition).order_by(collaborators.c.id).offset(offset).limit(limit)
    return every(conn, query, _record)


def for_app(conn: Connection, app_pk: int, *, offset: int = 0, limit: int = 128):
    return _list(conn, collaborators.c.app_pk == app_pk, offset, limit)


def for_user(conn: Connection, user_id: str, *, offset: int = 0, limit: int = 128):
    return _list(conn, collaborators.c.user_id == user_id, offset, limit)


def grant(
    conn: Connection, user_id: str, owner_user_id: str, app_id: str
) -> CollaboratorRecord | None:
    params = {"user_id": user_id, "owner_user_id": owner_user_id, "app_id": app_id}
    return one(conn, _GRANT, _record, params)


def find(conn: Connection, app_pk: int, key: str) -> CollaboratorRecord | None:
    """By collaborator public id, collaborator user id, or email."""
    query = _select().where(
        collaborators.c.app_pk == app_pk,
        (collaborators.c.public_id == key)
        | (collaborators.c.user_id == key)
        | (users.c.email == key.strip().lower()),
    )
    return one(conn, query, _record)


def set_grant(
    conn: Connection, app_pk: int, user_id: str, scopes: Iterable[str], endpoints: Iterable[str]
) -> bool:
    """Whether the collaborator was still there to be updated."""
    statement = (
        update(collaborators)
        .where(collaborators.c.app_pk == app_pk, collaborators.c.user_id == user_id)
        .values(**stored_grant(scopes, endpoints), modified_at=now())
    )
    return touched(conn, statement)


def remove(conn: Connection, app_pk: int, user_id: str) -> bool:
    """Whether this call removed the collaborator (False: removed already)."""
    statement = delete(collaborators).where(
        collaborators.c.app_pk == app_pk, collaborators.c.user_id == user_id
    )
    return touched(conn, statement)
