"""Apps: create (with a default API key, like Clarifai), patch, delete; each audited and
logged (`change_log`) so every process drops what it cached about the app and its keys."""

from __future__ import annotations

from typing import TypedDict, Unpack

from sqlalchemy import Connection

from scopegate.auth.tokens import SecretHasher
from scopegate.contract.status import ApiError, C, does_not_exist
from scopegate.services import change_log
from scopegate.services.audit import Actor, cli_actor
from scopegate.services.checks import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    check_length,
    validate_id,
)
from scopegate.services.keys import issue_default_key
from scopegate.store import apps, keys
from scopegate.store.records import AppRecord


def app_target(app: AppRecord) -> str:
    """How the change log and the audit log name an app."""
    return f"{app.user_id}/{app.app_id}"


def check_app_text(name: str, description: str) -> None:
    check_length("An app's name", name, MAX_NAME_LENGTH)
    check_length("An app's description", description, MAX_DESCRIPTION_LENGTH)


class AppFields(TypedDict, total=False):
    """A new app's name and description ("" unless given) and visibility (private)."""

    name: str
    description: str
    visibility: int


def create_app(
    conn: Connection,
    hasher: SecretHasher,
    user_id: str,
    app_id: str,
    *,
    actor: Actor | None = None,
    **fields: Unpack[AppFields],
) -> tuple[AppRecord, str]:
    """Create an app and its default app-specific API key (all scopes), audited (by default
    as the operator); returns the app and the key's secret, shown once.

    The change log names the app: every process drops what it cached about the id while
    no app had it, so an organization's members reach a new app within the bound.
    """
    actor = actor or cli_actor(user_id)
    validate_id("app id", app_id)
    check_app_text(fields.get("name", ""), fields.get("description", ""))
    if apps.get(conn, user_id, app_id):
        raise ApiError(C.CONN_INVALID_REQUEST, "Invalid request", f"App '{app_id}' already exists.")
    app = apps.create(conn, user_id, app_id, **fields)
    change_log.record(conn, "app", app_target(app))
    secret = issue_default_key(conn, hasher, user_id=user_id, app=app, actor=actor)
    actor.record(conn, "app.create", f"app:{app_target(app)}")
    return app, secret


def patch_app(
    conn: Connection,
    app: AppRecord,
    *,
    name: str,
    description: str,
    visibility: int,
    actor: Actor,
) -> AppRecord:
    """Overwrite an app's name, description and visibility."""
    check_app_text(name, description)
    if not apps.update(conn, app.pk, name=name, description=description, visibility=visibility):
        raise does_not_exist()  # deleted by a concurrent request since the caller found it
    change_log.record(conn, "app", app_target(app))
    actor.record(conn, "app.patch", f"app:{app_target(app)}", f"visibility={visibility}")
    updated = apps.get(conn, app.user_id, app.app_id)
    assert updated is not None  # updated in this transaction, which holds its row
    return updated


def delete_app(conn: Connection, app: AppRecord, *, actor: Actor) -> list[str]:
    """Delete an app and its keys, audited; returns the keys' public ids."""
    removed = remove_app(conn, app)
    actor.record(conn, "app.delete", f"app:{app_target(app)}", f"keys deleted: {len(removed)}")
    return removed


def remove_app(conn: Connection, app: AppRecord) -> list[str]:
    """Delete an app and its keys as part of a change its caller audits (`delete_app`, an
    organization's deletion); returns the keys' public ids.

    The change log names the keys and the app, so every process drops them and its cached
    relations to the app (grants, teams): an app made later under the same id starts bare.
    """
    public_ids = keys.public_ids_for_app(conn, app.pk)
    # Deleted first: of concurrent deletes of one app only the one that removed it goes on.
    if not apps.delete_app(conn, app.pk):
        raise does_not_exist()
    for public_id in public_ids:
        change_log.record(conn, "key", public_id)
    change_log.record(conn, "app", app_target(app))
    return public_ids
