"""Users table access."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select

from scopegate.store.records import UserRecord, now, row_reader
from scopegate.store.rows import one
from scopegate.store.schema import users

_record = row_reader(UserRecord)


def create(conn: Connection, user_id: str, email: str, password_hash: str | None) -> UserRecord:
    values = dict(
        user_id=user_id,
        email=email.strip().lower(),
        password_hash=password_hash,
        first_name="",
        last_name="",
        created_at=now(),
    )
    conn.execute(insert(users).values(**values))
    return UserRecord(**values)


def get(conn: Connection, user_id: str) -> UserRecord | None:
    return one(conn, select(users).where(users.c.user_id == user_id), _record)


def get_by_email(conn: Connection, email: str) -> UserRecord | None:
    query = select(users).where(func.lower(users.c.email) == email.strip().lower())
    return one(conn, query, _record)


def get_folded(conn: Connection, user_id: str) -> UserRecord | None:
    """The account (user or organization) whose id equals `user_id` but for letter case."""
    query = select(users).where(func.lower(users.c.user_id) == user_id.lower()).limit(1)
    return one(conn, query, _record)
