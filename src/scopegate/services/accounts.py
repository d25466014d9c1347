"""The names callers imported before the account services were split (users, keys, apps,
audit, checks): kept for the callers not moved yet (the CLI, the organization routes,
tests). New code imports the modules themselves; this goes once nothing imports it.

Four keep their old contract, which left the audit to the caller: `create_app` (no
`app.create` entry), `delete_app`, `roll_key` and `import_key` (no entry at all).
"""

from __future__ import annotations

from sqlalchemy import Connection

from scopegate.auth.tokens import SecretHasher
from scopegate.services.apps import _create_with_default_key, check_app_text, patch_app, remove_app
from scopegate.services.audit import Actor, cli_actor
from scopegate.services.checks import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    check_length,
    validate_id,
)
from scopegate.services.keys import (
    KEY_TYPES,
    SECRET_KIND,
    _import_secret,
    _new_secret,
    create_key,
    delete_key,
    find_key,
    issue_key,
    key_endpoints,
    key_scopes,
    key_type,
    patch_key,
)
from scopegate.services.users import sign_up
from scopegate.store.records import AppRecord, KeyRecord

__all__ = [
    "KEY_TYPES",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_NAME_LENGTH",
    "SECRET_KIND",
    "Actor",
    "check_app_text",
    "check_length",
    "cli_actor",
    "create_app",
    "create_key",
    "delete_app",
    "delete_key",
    "find_key",
    "import_key",
    "issue_key",
    "key_endpoints",
    "key_scopes",
    "key_type",
    "patch_app",
    "patch_key",
    "roll_key",
    "sign_up",
    "validate_id",
]

import_key = _import_secret
delete_app = remove_app


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
    return _create_with_default_key(
        conn,
        hasher,
        user_id,
        app_id,
        name=name,
        description=description,
        visibility=visibility,
        actor=actor or cli_actor(user_id),
    )


def roll_key(
    conn: Connection, hasher: SecretHasher, record: KeyRecord, grace_seconds: float
) -> str:
    return _new_secret(conn, hasher, record, grace_seconds)
