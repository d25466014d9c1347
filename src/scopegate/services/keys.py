"""Keys (Personal Access Tokens and app-specific API keys): issue, patch, delete, roll,
import. Each change is audited and logged (`change_log`), so no process keeps a stale view
of a key: this one drops it at commit, the others within the poll interval."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, Unpack

from sqlalchemy import Connection

from scopegate.auth import tokens
from scopegate.auth.principal import CredentialKind
from scopegate.auth.scopes import ALL, ScopeAlgebra, UnknownScopeError
from scopegate.auth.tokens import SecretHasher, SecretKind
from scopegate.contract.status import does_not_exist, invalid_argument
from scopegate.services import change_log, org_policies
from scopegate.services.audit import Actor
from scopegate.services.checks import MAX_DESCRIPTION_LENGTH, check_length
from scopegate.store import apps, keys, orgs
from scopegate.store.records import AppRecord, KeyRecord, KeyResources, now

if TYPE_CHECKING:
    from scopegate.contract.catalog import Catalog

SECRET_KIND = {CredentialKind.PAT: SecretKind.PAT, CredentialKind.APP_KEY: SecretKind.APP_KEY}
KEY_TYPES = {kind.value: kind for kind in (CredentialKind.PAT, CredentialKind.APP_KEY)}
MAX_GRACE_SECONDS = 30 * 86400


class KeyFields(TypedDict):
    """What every new key names: the keyword arguments of `import_key`."""

    kind: CredentialKind
    user_id: str
    app: AppRecord | None  # an app-specific key's app
    description: str
    scopes: Iterable[str]


class NewKey(KeyFields, total=False):
    """The keyword arguments of `issue_key` and `create_key`: a key's fields and these."""

    endpoints: Iterable[str]  # default: none
    expires_at: datetime | None  # default: never
    resources: KeyResources | None  # a fine-grained PAT's limits; default: none


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


def key_resources(
    conn: Connection, user_id: str, app_names: Iterable[str], org_ids: Iterable[str]
) -> KeyResources:
    """The limits of a fine-grained PAT of `user_id`, checked: each app (`owner/app`) is the
    user's own or an app of an organization the user belongs to, each organization one the
    user belongs to. Anything else is refused alike, whether it exists or not."""
    named_apps: list[tuple[str, str]] = []
    for name in dict.fromkeys(n.strip() for n in app_names):
        owner, _, app_id = name.partition("/")
        owner = user_id if owner in ("", "me") else owner
        app = apps.get(conn, owner, app_id) if app_id else None
        mine = app is not None and (
            owner == user_id or orgs.role_of(conn, owner, user_id) is not None
        )
        if not mine:
            raise invalid_argument(
                f"App '{name}' is not among your apps or your organizations' apps "
                "(name apps as USER_ID/APP_ID)."
            )
        named_apps.append((owner, app_id))
    named_orgs: list[str] = []
    for org_id in dict.fromkeys(o.strip() for o in org_ids):
        if not orgs.is_organization(conn, org_id) or orgs.role_of(conn, org_id, user_id) is None:
            raise invalid_argument(f"'{org_id}' is not an organization you belong to.")
        named_orgs.append(org_id)
    if not named_apps and not named_orgs:
        raise invalid_argument(
            "A fine-grained token names at least one app or organization; "
            "to reach all resources, remove its limits instead."
        )
    return KeyResources(tuple(sorted(named_apps)), tuple(sorted(named_orgs)))


def set_key_resources(
    conn: Connection, record: KeyRecord, resources: KeyResources | None, *, actor: Actor
) -> KeyRecord:
    """Limit a PAT to `resources` (None: all its user's resources), audited; every process
    drops the cached key (and the decisions resting on it) within the revocation bound."""
    if record.kind != CredentialKind.PAT.value:
        raise invalid_argument("Only a Personal Access Token can be limited to resources.")
    if not keys.set_resources(conn, record.pk, resources):
        raise does_not_exist("No such key.")
    change_log.record(conn, "key", record.public_id)
    org_policies.forget_decisions(conn, record.public_id)  # changed: to be approved again
    shown = resources.to_json() if resources is not None else "all"
    actor.record(conn, "key.resources", f"key:{record.public_id}", f"resources={shown}")
    return _stored(conn, record.user_id, record.public_id)


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


def _stored(conn: Connection, user_id: str, public_id: str) -> KeyRecord:
    stored = keys.get(conn, user_id, public_id)
    assert stored is not None  # written in this transaction, which holds its row
    return stored


def issue_key(conn: Connection, hasher: SecretHasher, **key: Unpack[NewKey]) -> tuple[str, str]:
    """Store a new key; returns (public id, secret). The secret is never stored. Audited
    by the change it is part of (`create_key`, a sign-up, a new app's default key)."""
    secret = tokens.generate(SECRET_KIND[key["kind"]])
    return _store_key(conn, hasher.digest(secret), secret, key), secret


def _store_key(conn: Connection, digest: bytes, secret: str, key: NewKey) -> str:
    kind, user_id, app = key["kind"], key["user_id"], key["app"]
    resources = key.get("resources")
    if resources is not None and kind is not CredentialKind.PAT:
        raise invalid_argument("Only a Personal Access Token can be limited to resources.")
    if kind is CredentialKind.PAT and orgs.is_organization(conn, user_id):
        # Here too, not only in PostKeys: the CLI issues and imports keys for any account.
        raise invalid_argument(
            "An organization has no Personal Access Tokens: members use their own."
        )
    check_length("A key's description", key["description"], MAX_DESCRIPTION_LENGTH)
    public_id = tokens.new_public_id()
    keys.create(
        conn,
        public_id=public_id,
        kind=kind.value,
        user_id=user_id,
        app_pk=app.pk if app else None,
        description=key["description"],
        scopes=key["scopes"],
        endpoints=key.get("endpoints", ()),
        digest=digest,
        masked=tokens.mask(secret),
        expires_at=key.get("expires_at"),
        resources=resources,
    )
    change_log.record(conn, "key", public_id)
    return public_id


def issue_default_key(
    conn: Connection, hasher: SecretHasher, *, user_id: str, app: AppRecord | None, actor: Actor
) -> str:
    """The all-scopes key an account starts with, audited: a new user's PAT (`app` None) or a
    new app's app-specific key. Returns its secret, shown once."""
    kind = CredentialKind.APP_KEY if app else CredentialKind.PAT
    public_id, secret = issue_key(
        conn,
        hasher,
        kind=kind,
        user_id=user_id,
        app=app,
        description=f"Default API key for {app.app_id}" if app else "Default PAT",
        scopes=[ALL],
    )
    of_app = f" app={app.app_id}" if app else ""
    actor.record(conn, "key.create", f"key:{public_id}", f"type={kind.value} default{of_app}")
    return secret


def create_key(
    conn: Connection, hasher: SecretHasher, *, actor: Actor, **key: Unpack[NewKey]
) -> tuple[KeyRecord, str]:
    """Issue a key and audit it; returns the stored key and its secret, shown once."""
    public_id, secret = issue_key(conn, hasher, **key)
    resources = key.get("resources")
    limited = "" if resources is None else f" resources={resources.to_json()}"
    actor.record(conn, "key.create", f"key:{public_id}", f"type={key['kind'].value}{limited}")
    return _stored(conn, key["user_id"], public_id), secret


class KeyChanges(TypedDict):
    """A key's mutable fields, all overwritten by `patch_key`."""

    description: str
    scopes: Iterable[str]
    endpoints: Iterable[str]
    expires_at: datetime | None


def patch_key(
    conn: Connection,
    record: KeyRecord,
    *,
    actor: Actor,
    details: str = "",
    **changes: Unpack[KeyChanges],
) -> KeyRecord:
    """Overwrite a key's mutable fields."""
    check_length("A key's description", changes["description"], MAX_DESCRIPTION_LENGTH)
    if not keys.update(conn, record.pk, **changes):
        raise does_not_exist("No such key.")  # deleted by a concurrent request since found
    change_log.record(conn, "key", record.public_id)
    actor.record(conn, "key.patch", f"key:{record.public_id}", details)
    return _stored(conn, record.user_id, record.public_id)


def delete_key(conn: Connection, record: KeyRecord, *, actor: Actor) -> None:
    """Delete a key and all its secrets.

    The DELETE itself decides: of concurrent deletes of one key, which all found it, only
    the one that removed the row succeeds (and is audited); the others find no such key."""
    if not keys.delete_key(conn, record.pk):
        raise does_not_exist("No such key.")
    change_log.record(conn, "key", record.public_id)
    actor.record(conn, "key.delete", f"key:{record.public_id}")


def roll_key(
    conn: Connection, hasher: SecretHasher, record: KeyRecord, grace_seconds: float, *, actor: Actor
) -> tuple[KeyRecord, str]:
    """A new secret for the same key, audited; old secrets end after `grace_seconds` (0:
    at once). Returns the key and its new secret, shown once."""
    secret = _new_secret(conn, hasher, record, grace_seconds)
    actor.record(conn, "key.roll", f"key:{record.public_id}", f"grace_seconds={grace_seconds:g}")
    return _stored(conn, record.user_id, record.public_id), secret


def _new_secret(
    conn: Connection, hasher: SecretHasher, record: KeyRecord, grace_seconds: float
) -> str:
    if grace_seconds < 0 or grace_seconds > MAX_GRACE_SECONDS:
        raise invalid_argument("grace_seconds must be between 0 and 2592000 (30 days).")
    kind = CredentialKind(record.kind)
    secret = tokens.generate(SECRET_KIND[kind])
    # The key's row first: it is locked from here on, or the key is gone (deleted by a
    # concurrent request) and nothing is written.
    if not keys.set_masked(conn, record.pk, tokens.mask(secret)):
        raise does_not_exist("No such key.")
    keys.end_secrets(conn, record.pk, now() + timedelta(seconds=grace_seconds))
    keys.add_secret(conn, record.pk, hasher.digest(secret))
    change_log.record(conn, "key", record.public_id)
    return secret


def import_key(
    conn: Connection, hasher: SecretHasher, *, secret: str, actor: Actor, **key: Unpack[KeyFields]
) -> KeyRecord:
    """Adopt a secret in the original service's format (32 hex), audited."""
    if not tokens.is_legacy_format(secret):
        raise invalid_argument("Only keys in the original format (32 lowercase hex) import.")
    digest = hasher.digest(secret)
    if keys.digest_exists(conn, digest):
        raise invalid_argument("That key was imported already.")
    public_id = _store_key(conn, digest, secret, NewKey(**key))
    actor.record(conn, "key.import", f"key:{public_id}", f"type={key['kind'].value}")
    return _stored(conn, key["user_id"], public_id)
