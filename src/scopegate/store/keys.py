"""Keys (PATs and app-specific API keys) and their hashed secrets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select
from sqlalchemy import update as update_stmt

from scopegate.store.paging import newest_first
from scopegate.store.records import (
    KeyRecord,
    KeyResources,
    json_strings,
    now,
    row_reader,
    stored_grant,
)
from scopegate.store.rows import every, insert_created, modify, one, touched
from scopegate.store.schema import apps, key_secrets, keys

_COLUMNS = (
    keys.c.id,
    keys.c.public_id,
    keys.c.kind,
    keys.c.user_id,
    keys.c.description,
    keys.c.scopes,
    keys.c.endpoints,
    keys.c.masked,
    keys.c.expires_at,
    keys.c.last_used_at,
    keys.c.created_at,
    keys.c.modified_at,
    keys.c.resources,
    apps.c.user_id.label("app_user_id"),
    apps.c.app_id,
)


def _select():
    return select(*_COLUMNS).select_from(keys.outerjoin(apps, keys.c.app_pk == apps.c.id))


_record = row_reader(
    KeyRecord, scopes=json_strings, endpoints=json_strings, resources=KeyResources.from_json
)


def create(
    conn: Connection,
    *,
    public_id: str,
    kind: str,
    user_id: str,
    app_pk: int | None,
    description: str,
    scopes: Iterable[str],
    endpoints: Iterable[str],
    digest: bytes,
    masked: str,
    expires_at: datetime | None,
    resources: KeyResources | None = None,
) -> int:
    at = now()
    pk = insert_created(
        conn,
        keys,
        at,
        public_id=public_id,
        kind=kind,
        user_id=user_id,
        app_pk=app_pk,
        description=description,
        **stored_grant(scopes, endpoints),
        masked=masked,
        expires_at=expires_at,
        resources=resources.to_json() if resources is not None else None,
    )
    conn.execute(insert(key_secrets).values(digest=digest, key_pk=pk, created_at=at))
    return pk


# Built once: this runs on every credential cache miss, and building the statement (and
# its cache key) costs more than the indexed query itself.
_BY_DIGEST = (
    _select()
    .join(key_secrets, key_secrets.c.key_pk == keys.c.id)
    .where(
        key_secrets.c.digest == bindparam("digest"),
        or_(key_secrets.c.valid_until.is_(None), key_secrets.c.valid_until > bindparam("at")),
    )
)


def find_by_digest(conn: Connection, digest: bytes, at: datetime) -> KeyRecord | None:
    """The key a secret belongs to, if that secret is still valid (rolled ones expire)."""
    return one(conn, _BY_DIGEST, _record, {"digest": digest, "at": at})


def get(conn: Connection, user_id: str, public_id: str) -> KeyRecord | None:
    query = _select().where(keys.c.user_id == user_id, keys.c.public_id == public_id)
    return one(conn, query, _record)


def list_for_user(
    conn: Connection,
    user_id: str,
    *,
    kind: str | None = None,
    app_pk: int | None = None,
    not_expired_at: datetime | None = None,
    offset: int = 0,
    limit: int = 128,
) -> list[KeyRecord]:
    conditions = [keys.c.user_id == user_id]
    if kind:
        conditions.append(keys.c.kind == kind)
    if app_pk is not None:
        conditions.append(keys.c.app_pk == app_pk)
    if not_expired_at is not None:
        conditions.append(or_(keys.c.expires_at.is_(None), keys.c.expires_at > not_expired_at))
    query = _select().where(and_(*conditions))
    return every(conn, newest_first(query, keys, offset, limit), _record)


def public_ids_for_app(conn: Connection, app_pk: int) -> list[str]:
    return list(conn.execute(select(keys.c.public_id).where(keys.c.app_pk == app_pk)).scalars())


def delete_key(conn: Connection, pk: int) -> bool:
    """Whether this call deleted the key (False: it was gone already). The key's row goes
    first, as patch and roll lock it first: concurrent changes of one key queue on that row
    instead of deadlocking. Its secrets go by the foreign key's cascade, and here too for a
    SQLite connection that does not enforce foreign keys."""
    deleted = touched(conn, delete(keys).where(keys.c.id == pk))
    conn.execute(delete(key_secrets).where(key_secrets.c.key_pk == pk))
    return deleted


def touch_last_used(conn: Connection, used: dict[str, datetime]) -> None:
    for public_id, at in used.items():
        conn.execute(update_stmt(keys).where(keys.c.public_id == public_id).values(last_used_at=at))


def update(
    conn: Connection,
    pk: int,
    *,
    description: str,
    scopes: Iterable[str],
    endpoints: Iterable[str],
    expires_at: datetime | None,
) -> bool:
    """Whether the key still existed to be updated."""
    return modify(
        conn,
        keys,
        pk,
        description=description,
        **stored_grant(scopes, endpoints),
        expires_at=expires_at,
    )


def set_resources(conn: Connection, pk: int, resources: KeyResources | None) -> bool:
    """Whether the key still existed to be updated. None: unlimited."""
    return modify(conn, keys, pk, resources=resources.to_json() if resources is not None else None)


def add_secret(conn: Connection, pk: int, digest: bytes) -> None:
    conn.execute(insert(key_secrets).values(digest=digest, key_pk=pk, created_at=now()))


def end_secrets(conn: Connection, pk: int, valid_until: datetime) -> None:
    """Old secrets of a rolled key stay valid until `valid_until` (never extended)."""
    conn.execute(
        update_stmt(key_secrets)
        .where(
            key_secrets.c.key_pk == pk,
            or_(key_secrets.c.valid_until.is_(None), key_secrets.c.valid_until > valid_until),
        )
        .values(valid_until=valid_until)
    )


def digest_exists(conn: Connection, digest: bytes) -> bool:
    return (
        conn.execute(select(key_secrets.c.key_pk).where(key_secrets.c.digest == digest)).first()
        is not None
    )


# Masks of imported secrets have no type prefix: `tokens.mask` gives them as `…abcd`.
_LEGACY_MASKED = keys.c.masked.startswith("…")


def legacy_secrets_may_exist(conn: Connection, at: datetime) -> bool:
    """Whether any stored secret may be in the legacy format: a key whose secret was
    imported, or a rolled-over secret still in its grace period (it may be an imported
    one; its key's mask already shows the new secret). Scans `keys`: run it rarely."""
    imported = select(keys.c.id).where(_LEGACY_MASKED).limit(1)
    if conn.execute(imported).first() is not None:
        return True
    in_grace = select(key_secrets.c.key_pk).where(key_secrets.c.valid_until > at).limit(1)
    return conn.execute(in_grace).first() is not None


def any_imported(conn: Connection, public_ids: Iterable[str]) -> bool:
    """Whether one of these keys holds an imported (legacy-format) secret."""
    ids = list(public_ids)
    if not ids:
        return False
    found = select(keys.c.id).where(keys.c.public_id.in_(ids), _LEGACY_MASKED).limit(1)
    return conn.execute(found).first() is not None


def set_masked(conn: Connection, pk: int, masked: str) -> bool:
    """Whether the key still existed to be updated."""
    return modify(conn, keys, pk, masked=masked)
