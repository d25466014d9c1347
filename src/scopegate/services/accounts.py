"""Account operations shared by the API handlers and the CLI: sign-up, apps, keys.

Each runs in the caller's transaction, so a user and its default PAT, or an app and its
default API key, are created together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from scopegate.auth import tokens
from scopegate.auth.principal import CredentialKind
from scopegate.auth.scopes import ALL, ScopeAlgebra, UnknownScopeError
from scopegate.auth.tokens import SecretHasher, SecretKind
from scopegate.contract.status import ApiError, C, does_not_exist, invalid_argument
from scopegate.services.account_ids import check_new_account_id
from scopegate.store import apps, audit, changes, keys, orgs, users
from scopegate.store.records import AppRecord, KeyRecord, UserRecord, now
from scopegate.store.schema import ID_LENGTH

if TYPE_CHECKING:
    from scopegate.contract.catalog import Catalog

_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{ID_LENGTH - 1}}}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Free text a caller stores on keys and apps is capped, as Clarifai caps it: a key or app
# list must stay small however its items were written (names: the column's size).
MAX_DESCRIPTION_LENGTH = 512
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, for the audit log: never a secret."""

    user_id: str
    credential_kind: str = ""
    credential_id: str = ""
    client_address: str = ""
    request_id: str = ""

    def record(self, conn: Connection, action: str, target: str, details: str = "") -> None:
        audit.record(
            conn,
            action,
            actor_user_id=self.user_id,
            credential_kind=self.credential_kind,
            credential_id=self.credential_id,
            target=target,
            client_address=self.client_address,
            request_id=self.request_id,
            details=details,
        )


def cli_actor(user_id: str) -> Actor:
    return Actor(user_id=user_id, credential_kind="cli", client_address="local")


SECRET_KIND = {CredentialKind.PAT: SecretKind.PAT, CredentialKind.APP_KEY: SecretKind.APP_KEY}
KEY_TYPES = {kind.value: kind for kind in (CredentialKind.PAT, CredentialKind.APP_KEY)}


def validate_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value or ""):
        raise invalid_argument(
            f"{kind} '{value}' is not valid: use 1 to {ID_LENGTH} letters, digits, '_' or '-', "
            "starting with a letter or digit."
        )
    return value


def check_length(what: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise invalid_argument(f"{what} has {len(value)} characters; it may have at most {limit}.")
    return value


def key_type(name: str) -> CredentialKind:
    """The kind of key a type name asks for; empty means a Personal Access Token."""
    kind = KEY_TYPES.get(name or CredentialKind.PAT.value)
    if kind is None:
        raise invalid_argument(
            f"Unknown key type '{name}': use personal_access_token or app_specific_key."
        )
    return kind


def key_scopes(algebra: ScopeAlgebra, names: Iterable[str]) -> frozenset[str]:
    """Canonical scope names (`Inputs:Get` -> `Inputs_Get`) plus those they depend on."""
    try:
        return algebra.close(algebra.normalize(names))
    except UnknownScopeError as error:
        raise invalid_argument(
            f"Unknown scopes: {', '.join(error.names)}. Valid scopes: "
            f"{', '.join(sorted(algebra.names))}."
        ) from None


def key_endpoints(catalog: Catalog, names: Iterable[str]) -> frozenset[str]:
    """Full method names (`/clarifai.api.V2/PostModelOutputs`) from full or short names."""
    result, unknown = set(), []
    for name in names:
        spec = catalog.by_full_name.get(name) or catalog.methods.get(name.strip("/"))
        if spec is None:
            unknown.append(name)
        else:
            result.add(spec.full_name)
    if unknown:
        raise invalid_argument(
            f"Unknown endpoints: {', '.join(unknown)}. Give full method names such as "
            "/clarifai.api.V2/PostModelOutputs."
        )
    return frozenset(result)


def find_key(conn: Connection, hasher: SecretHasher, user_id: str, key_id: str) -> KeyRecord:
    """A key of `user_id` named by its public id, or by a still-valid secret of it."""
    key_id = key_id.strip()
    # Public ids and imported secrets share a form (32 hex): try the public id first.
    record = keys.get(conn, user_id, key_id) if key_id else None
    if record is None and tokens.parse(key_id) not in (None, SecretKind.SESSION):
        record = keys.find_by_digest(conn, hasher.digest(key_id), now())
    if record is None or record.user_id != user_id:
        raise does_not_exist("No such key.")
    return record


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
    """Store a new key; returns (public id, secret). The secret is never stored.

    The change is logged like any other, so no server keeps a stale view of the key.
    """
    secret = tokens.generate(SECRET_KIND[kind])
    public_id = _store_key(
        conn,
        hasher.digest(secret),
        secret,
        kind=kind,
        user_id=user_id,
        app=app,
        description=description,
        scopes=scopes,
        endpoints=endpoints,
        expires_at=expires_at,
    )
    return public_id, secret


def _store_key(
    conn: Connection,
    digest: bytes,
    secret: str,
    *,
    kind: CredentialKind,
    user_id: str,
    app: AppRecord | None,
    description: str,
    scopes: Iterable[str],
    endpoints: Iterable[str],
    expires_at: datetime | None,
) -> str:
    if kind is CredentialKind.PAT and orgs.is_organization(conn, user_id):
        # Here too, not only in PostKeys: the CLI issues and imports keys for any account.
        raise invalid_argument(
            "An organization has no Personal Access Tokens: members use their own."
        )
    check_length("A key's description", description, MAX_DESCRIPTION_LENGTH)
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
        digest=digest,
        masked=tokens.mask(secret),
        expires_at=expires_at,
    )
    changes.record(conn, "key", public_id)
    return public_id


def create_key(
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
    actor: Actor,
) -> tuple[KeyRecord, str]:
    """Issue a key and audit it; returns the stored key and its secret, shown once."""
    public_id, secret = issue_key(
        conn,
        hasher,
        kind=kind,
        user_id=user_id,
        app=app,
        description=description,
        scopes=scopes,
        endpoints=endpoints,
        expires_at=expires_at,
    )
    actor.record(conn, "key.create", f"key:{public_id}", f"type={kind.value}")
    return keys.get(conn, user_id, public_id), secret


def patch_key(
    conn: Connection,
    record: KeyRecord,
    *,
    description: str,
    scopes: Iterable[str],
    endpoints: Iterable[str],
    expires_at: datetime | None,
    actor: Actor,
    details: str = "",
) -> KeyRecord:
    """Overwrite a key's mutable fields; running servers drop it from their caches."""
    check_length("A key's description", description, MAX_DESCRIPTION_LENGTH)
    updated = keys.update(
        conn,
        record.pk,
        description=description,
        scopes=scopes,
        endpoints=endpoints,
        expires_at=expires_at,
    )
    if not updated:  # deleted by a concurrent request since the caller found it
        raise does_not_exist("No such key.")
    changes.record(conn, "key", record.public_id)
    actor.record(conn, "key.patch", f"key:{record.public_id}", details)
    return keys.get(conn, record.user_id, record.public_id)


def delete_key(conn: Connection, record: KeyRecord, *, actor: Actor) -> None:
    """Delete a key and all its secrets; running servers drop it from their caches.

    The DELETE itself decides: of concurrent deletes of one key, which all found it, only
    the one that removed the row succeeds (and is audited); the others find no such key."""
    if not keys.delete_key(conn, record.pk):
        raise does_not_exist("No such key.")
    changes.record(conn, "key", record.public_id)
    actor.record(conn, "key.delete", f"key:{record.public_id}")


def sign_up(
    conn: Connection,
    hasher: SecretHasher,
    user_id: str,
    email: str,
    password_hash: str | None,
    actor: Actor | None = None,
) -> tuple[UserRecord, str]:
    """Create a user and its default PAT (all scopes); returns the user and the PAT."""
    validate_id("user id", user_id)
    if not _EMAIL.fullmatch(email.strip()):
        raise invalid_argument(f"'{email}' is not an email address.")
    if users.get(conn, user_id) or users.get_by_email(conn, email):
        raise ApiError(
            C.CONN_INVALID_REQUEST, "Invalid request", "That user id or email is already taken."
        )
    check_new_account_id(conn, "user id", user_id)
    try:
        user = users.create(conn, user_id, email, password_hash)
    except IntegrityError as exc:  # a concurrent sign-up won the race
        raise ApiError(
            C.CONN_INVALID_REQUEST, "Invalid request", "That user id or email is already taken."
        ) from exc
    public_id, pat = issue_key(
        conn,
        hasher,
        kind=CredentialKind.PAT,
        user_id=user_id,
        app=None,
        description="Default PAT",
        scopes=[ALL],
    )
    actor = actor or cli_actor(user_id)
    actor.record(conn, "user.create", f"user:{user_id}")
    actor.record(conn, "key.create", f"key:{public_id}", "type=personal_access_token default")
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
    actor: Actor | None = None,
) -> tuple[AppRecord, str]:
    """Create an app and its default app-specific API key (all scopes), like Clarifai.

    The change log names the app: every process drops what it cached about the id while
    no app had it, so an organization's members reach a new app within the bound.
    """
    validate_id("app id", app_id)
    check_app_text(name, description)
    if apps.get(conn, user_id, app_id):
        raise ApiError(C.CONN_INVALID_REQUEST, "Invalid request", f"App '{app_id}' already exists.")
    app = apps.create(conn, user_id, app_id, name, description, visibility)
    changes.record(conn, "app", f"{user_id}/{app_id}")
    public_id, secret = issue_key(
        conn,
        hasher,
        kind=CredentialKind.APP_KEY,
        user_id=user_id,
        app=app,
        description=f"Default API key for {app_id}",
        scopes=[ALL],
    )
    (actor or cli_actor(user_id)).record(
        conn, "key.create", f"key:{public_id}", f"type=app_specific_key default app={app_id}"
    )
    return app, secret


def check_app_text(name: str, description: str) -> None:
    check_length("An app's name", name, MAX_NAME_LENGTH)
    check_length("An app's description", description, MAX_DESCRIPTION_LENGTH)


def patch_app(
    conn: Connection,
    app: AppRecord,
    *,
    name: str,
    description: str,
    visibility: int,
    actor: Actor,
) -> AppRecord:
    """Overwrite an app's name, description and visibility; audited, and logged so every
    process drops what it cached about the app."""
    check_app_text(name, description)
    if not apps.update(conn, app.pk, name=name, description=description, visibility=visibility):
        raise does_not_exist()  # deleted by a concurrent request since the caller found it
    changes.record(conn, "app", f"{app.user_id}/{app.app_id}")
    actor.record(conn, "app.patch", f"app:{app.user_id}/{app.app_id}", f"visibility={visibility}")
    updated = apps.get(conn, app.user_id, app.app_id)
    assert updated is not None  # updated in this transaction, which holds its row
    return updated


def delete_app(conn: Connection, app: AppRecord) -> list[str]:
    """Delete an app and its keys; returns the keys' public ids, to evict from caches.

    The change log names the keys and the app, so every process drops them and its cached
    relations to the app (grants, teams): an app made later under the same id starts bare.
    """
    public_ids = keys.public_ids_for_app(conn, app.pk)
    # Deleted first: of concurrent deletes of one app only the one that removed it goes on.
    if not apps.delete_app(conn, app.pk):
        raise does_not_exist()
    for public_id in public_ids:
        changes.record(conn, "key", public_id)
    changes.record(conn, "app", f"{app.user_id}/{app.app_id}")
    return public_ids


def roll_key(
    conn: Connection, hasher: SecretHasher, record: KeyRecord, grace_seconds: float
) -> str:
    """A new secret for the same key; old secrets end after `grace_seconds` (0: at once)."""
    if grace_seconds < 0 or grace_seconds > 30 * 86400:
        raise invalid_argument("grace_seconds must be between 0 and 2592000 (30 days).")
    kind = CredentialKind(record.kind)
    secret = tokens.generate(SECRET_KIND[kind])
    # The key's row first: it is locked from here on, or the key is gone (deleted by a
    # concurrent request) and nothing is written.
    if not keys.set_masked(conn, record.pk, tokens.mask(secret)):
        raise does_not_exist("No such key.")
    keys.end_secrets(conn, record.pk, now() + timedelta(seconds=grace_seconds))
    keys.add_secret(conn, record.pk, hasher.digest(secret))
    changes.record(conn, "key", record.public_id)
    return secret


def import_key(
    conn: Connection,
    hasher: SecretHasher,
    *,
    secret: str,
    kind: CredentialKind,
    user_id: str,
    app: AppRecord | None,
    description: str,
    scopes: Iterable[str],
) -> str:
    """Adopt a secret in the original service's format (32 hex); returns its public id."""
    if not tokens.is_legacy_format(secret):
        raise invalid_argument("Only keys in the original format (32 lowercase hex) import.")
    digest = hasher.digest(secret)
    if keys.digest_exists(conn, digest):
        raise invalid_argument("That key was imported already.")
    return _store_key(
        conn,
        digest,
        secret,
        kind=kind,
        user_id=user_id,
        app=app,
        description=description,
        scopes=scopes,
        endpoints=(),
        expires_at=None,
    )
