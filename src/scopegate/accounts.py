"""Account operations shared by the API handlers and the CLI: sign-up, apps, keys.

Each runs in the caller's transaction, so a user and its default PAT, or an app and its
default API key, are created together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from scopegate.auth import tokens
from scopegate.auth.principal import CredentialKind
from scopegate.auth.scopes import ALL
from scopegate.auth.tokens import SecretHasher, SecretKind
from scopegate.status import ApiError, C, invalid_argument
from scopegate.store import apps, changes, keys, users
from scopegate.store.records import AppRecord, UserRecord

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SECRET_KIND = {CredentialKind.PAT: SecretKind.PAT, CredentialKind.APP_KEY: SecretKind.APP_KEY}


def validate_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value or ""):
        raise invalid_argument(
            f"{kind} '{value}' is not valid: use 1 to 64 letters, digits, '_' or '-', "
            "starting with a letter or digit."
        )
    return value


def issue_key(
    conn: Connection,
    hasher: SecretHasher,
    *,
    kind: CredentialKind,
    user_id: str,
    app: AppRecord | None,
    description: str,
    scopes: Iterable[str],
    endpoints: Iterable[str] = (),
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Store a new key; returns (public id, secret). The secret is never stored."""
    secret = tokens.generate(SECRET_KIND[kind])
    public_id = tokens.new_public_id()
    keys.create(
        conn,
        public_id=public_id,
        kind=kind.value,
        user_id=user_id,
        app_pk=app.pk if app else None,
        description=description,
        scopes=scopes,
        endpoints=endpoints,
        digest=hasher.digest(secret),
        masked=tokens.mask(secret),
        expires_at=expires_at,
    )
    return public_id, secret


def sign_up(
    conn: Connection, hasher: SecretHasher, user_id: str, email: str, password_hash: str | None
) -> tuple[UserRecord, str]:
    """Create a user and its default PAT (all scopes); returns the user and the PAT."""
    validate_id("user id", user_id)
    if user_id == "me":
        raise invalid_argument("'me' is reserved: it always names the caller.")
    if not _EMAIL.fullmatch(email.strip()):
        raise invalid_argument(f"'{email}' is not an email address.")
    if users.get(conn, user_id) or users.get_by_email(conn, email):
        raise ApiError(
            C.CONN_INVALID_REQUEST, "Invalid request", "That user id or email is already taken."
        )
    try:
        user = users.create(conn, user_id, email, password_hash)
    except IntegrityError as exc:  # a concurrent sign-up won the race
        raise ApiError(
            C.CONN_INVALID_REQUEST, "Invalid request", "That user id or email is already taken."
        ) from exc
    _, pat = issue_key(
        conn,
        hasher,
        kind=CredentialKind.PAT,
        user_id=user_id,
        app=None,
        description="Default PAT",
        scopes=[ALL],
    )
    return user, pat


def create_app(
    conn: Connection,
    hasher: SecretHasher,
    user_id: str,
    app_id: str,
    *,
    name: str = "",
    description: str = "",
    visibility: int = 10,
) -> tuple[AppRecord, str]:
    """Create an app and its default app-specific API key (all scopes), like Clarifai."""
    validate_id("app id", app_id)
    if apps.get(conn, user_id, app_id):
        raise ApiError(C.CONN_INVALID_REQUEST, "Invalid request", f"App '{app_id}' already exists.")
    app = apps.create(conn, user_id, app_id, name, description, visibility)
    _, secret = issue_key(
        conn,
        hasher,
        kind=CredentialKind.APP_KEY,
        user_id=user_id,
        app=app,
        description=f"Default API key for {app_id}",
        scopes=[ALL],
    )
    return app, secret


def delete_app(conn: Connection, app: AppRecord) -> list[str]:
    """Delete an app and its keys; returns the keys' public ids, to evict from caches."""
    public_ids = keys.public_ids_for_app(conn, app.pk)
    for public_id in public_ids:
        changes.record(conn, "key", public_id)
    apps.delete_app(conn, app.pk)
    return public_ids
