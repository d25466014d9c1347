"""`scopegate keys`: Personal Access Tokens and app-specific API keys.

Every change runs in one transaction, logs the changed key so running servers drop it from
their caches, and is audited.
"""

from __future__ import annotations

import enum
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from scopegate.auth.principal import CredentialKind
from scopegate.auth.scopes import ALL
from scopegate.cli import output as out
from scopegate.cli.common import (
    Database,
    UserOption,
    names,
    option,
    require_app,
    require_user,
    usage,
    with_database,
)
from scopegate.cli.key_limits import (
    LimitOptions,
    apply_key_limits,
    describe,
    document,
    limits_by_key,
)
from scopegate.cli.option_groups import option_group
from scopegate.contract.status import ApiError
from scopegate.services import keys as key_services
from scopegate.services import leaks as leak_services
from scopegate.services.audit import cli_actor
from scopegate.store import keys
from scopegate.store.records import KeyResources, now

if TYPE_CHECKING:
    from scopegate.context import Services

keys_app = typer.Typer(
    help="Manage Personal Access Tokens and app-specific API keys. Secrets are shown once, "
    "when made; elsewhere a key is named by its public id.",
    no_args_is_help=True,
)


class KeyType(enum.StrEnum):
    personal_access_token = "personal_access_token"
    app_specific_key = "app_specific_key"


MAX_GRACE_SECONDS = 30 * 86400
NO_LIMIT_OPTIONS = LimitOptions()  # a placeholder: @option_group puts the options there

KeyIdArgument = Annotated[
    str, typer.Argument(help="The key's public id, or its secret.", show_default=False)
]
KeyTypeOption = Annotated[KeyType, typer.Option("--type", help="The kind of key.")]
AppOption = Annotated[str | None, option("--app", "The user's app an app-specific key is tied to.")]
DescriptionOption = Annotated[str, typer.Option("--description", help="What the key is for.")]
ScopeOption = Annotated[
    list[str] | None,
    option(
        "--scope",
        "A scope, as Inputs_Get or Inputs:Get; repeat the option (or separate with commas) for "
        "several. Scopes they depend on are added.",
    ),
]
EndpointOption = Annotated[
    list[str] | None,
    option(
        "--endpoint",
        "A method the key may call whatever its scopes, e.g. /clarifai.api.V2/PostModelOutputs; "
        "repeatable.",
    ),
]
OnlyAppOption = Annotated[
    list[str] | None,
    option(
        "--only-app",
        "Limit a PAT to this app, as USER/APP (an app of the user or of one of its "
        "organizations); repeatable. Outside its apps and organizations it finds nothing.",
    ),
]
OnlyOrgOption = Annotated[
    list[str] | None,
    option("--only-org", "Limit a PAT to this organization (all its apps); repeatable."),
]


def _resources(
    conn, user: str, only_app: list[str] | None, only_org: list[str] | None
) -> KeyResources | None:
    """The limits --only-app/--only-org name (None when neither is given)."""
    if not only_app and not only_org:
        return None
    return key_services.key_resources(conn, user, names(only_app), names(only_org))


ExpiresOption = Annotated[
    int | None, option("--expires-in-days", "Expire the key this many days from now.", min=1)
]


def _check_app_option(key_type: KeyType, app_id: str | None) -> None:
    if key_type is KeyType.app_specific_key and not app_id:
        usage("An app-specific key needs --app APP_ID (an app of that user).")
    if key_type is KeyType.personal_access_token and app_id:
        usage(
            "A personal access token is not tied to an app: "
            "drop --app or use --type app_specific_key."
        )


def _scopes(services: Services, values: list[str] | None) -> frozenset[str]:
    """Canonical scopes plus their dependencies; unknown ones are a usage error."""
    try:
        return key_services.key_scopes(services.scopes, names(values))
    except ApiError as exc:
        usage(exc.details)


def _endpoints(services: Services, values: list[str] | None) -> frozenset[str]:
    try:
        return key_services.key_endpoints(services.catalog, [v for v in names(values) if v])
    except ApiError as exc:
        usage(exc.details)


def _expiry(days: int | None) -> datetime | None:
    return now() + timedelta(days=days) if days else None


@keys_app.command("list")
@with_database
def keys_list(
    user: UserOption,
    key_type: Annotated[KeyType | None, option("--type", "Only keys of this kind.")] = None,
    app_id: Annotated[str | None, option("--app", "Only keys tied to this app.")] = None,
    *,
    db: Database,
) -> None:
    """List a user's keys: public ids and masked secrets, never a secret."""
    with db.connect() as (_, conn):
        require_user(conn, user)
        app_pk = require_app(conn, user, app_id).pk if app_id else None
        kind = key_type.value if key_type else None
        found = keys.list_for_user(conn, user, kind=kind, app_pk=app_pk, limit=10**9)
        limited = limits_by_key(conn, found)
    db.show(
        {
            "user_id": user,
            "keys": [out.key_document(k) | {"limits": document(limited.get(k.pk))} for k in found],
        },
        out.key_rows(found, f"Keys of {user}", f"User {user} has no such keys."),
        *(f"Limits of {k.public_id}: {describe(limited[k.pk])}" for k in found if k.pk in limited),
    )


@keys_app.command("create")
@with_database
@option_group("limits", LimitOptions)
def keys_create(
    user: UserOption,
    key_type: KeyTypeOption = KeyType.personal_access_token,
    app_id: AppOption = None,
    description: DescriptionOption = "",
    limits: LimitOptions = NO_LIMIT_OPTIONS,
    scope: ScopeOption = None,
    endpoint: EndpointOption = None,
    expires_in_days: ExpiresOption = None,
    only_app: OnlyAppOption = None,
    only_org: OnlyOrgOption = None,
    *,
    db: Database,
) -> None:
    """Create a key and print its secret, once.

    Without --scope or --endpoint the key gets the scope All. --only-app and --only-org
    make a fine-grained PAT.
    """
    _check_app_option(key_type, app_id)
    limits.check()
    if (only_app or only_org) and key_type is not KeyType.personal_access_token:
        usage("--only-app and --only-org limit a personal access token only.")
    with db.services() as services:
        scopes = _scopes(services, scope if scope or endpoint else [ALL])
        endpoints = _endpoints(services, endpoint)
        with services.engine.begin() as conn:
            require_user(conn, user)
            record, secret = key_services.create_key(
                conn,
                services.hasher,
                kind=CredentialKind(key_type.value),
                user_id=user,
                app=require_app(conn, user, app_id) if app_id else None,
                description=description,
                scopes=scopes,
                endpoints=endpoints,
                expires_at=_expiry(expires_in_days),
                resources=_resources(conn, user, only_app, only_org),
                actor=cli_actor(user),
            )
            apply_key_limits(conn, record, limits, cli_actor(user))
    db.show(
        {"id": record.public_id, "secret": secret, **out.key_document(record)},
        f"Created {record.kind} {record.public_id} for {user}.",
        out.Secret("Secret", secret),
    )


@keys_app.command("patch")
@with_database
@option_group("limits", LimitOptions)
def keys_patch(
    key_id: KeyIdArgument,
    user: UserOption,
    description: Annotated[str | None, option("--description", "New description.")] = None,
    limits: LimitOptions = NO_LIMIT_OPTIONS,
    scope: ScopeOption = None,
    endpoint: EndpointOption = None,
    expires_in_days: ExpiresOption = None,
    no_expiry: Annotated[
        bool, typer.Option("--no-expiry", help="Remove the key's expiry.")
    ] = False,
    only_app: OnlyAppOption = None,
    only_org: OnlyOrgOption = None,
    all_resources: Annotated[
        bool, typer.Option("--all-resources", help="Lift a PAT's --only-app/--only-org limits.")
    ] = False,
    *,
    db: Database,
) -> None:
    """Change a key: the fields given are overwritten, the others kept.

    --scope replaces all of the key's scopes (dependencies are added again); --only-app and
    --only-org replace a PAT's limits, --all-resources lifts them.
    """
    if expires_in_days is not None and no_expiry:
        usage("Give --expires-in-days or --no-expiry, not both.")
    limits.check()
    if all_resources and (only_app or only_org):
        usage("Give --all-resources or --only-app/--only-org, not both.")
    limiting = bool(only_app or only_org or all_resources)
    changed = [
        name
        for name, given in (
            ("description", description is not None),
            ("scopes", scope is not None),
            ("endpoints", endpoint is not None),
            ("expires_at", expires_in_days is not None or no_expiry),
            ("resources", limiting),
            ("limits", limits.given),
        )
        if given
    ]
    if not changed:
        usage(
            "Nothing to change: give --description, --scope, --endpoint, --expires-in-days, "
            "--no-expiry, --only-app, --only-org, --all-resources or a limit option."
        )
    with db.services() as services:
        scopes = _scopes(services, scope) if scope is not None else None
        endpoints = _endpoints(services, endpoint) if endpoint is not None else None
        with services.engine.begin() as conn:
            require_user(conn, user)
            record = key_services.find_key(conn, services.hasher, user, key_id)
            if no_expiry:
                expires_at = None
            elif expires_in_days is not None:
                expires_at = _expiry(expires_in_days)
            else:
                expires_at = record.expires_at
            record = key_services.patch_key(
                conn,
                record,
                description=record.description if description is None else description,
                scopes=record.scopes if scopes is None else scopes,
                endpoints=record.endpoints if endpoints is None else endpoints,
                expires_at=expires_at,
                actor=cli_actor(user),
                details="changed: " + ", ".join(changed),
            )
            if limiting:
                resources = _resources(conn, user, only_app, only_org)
                record = key_services.set_key_resources(
                    conn, record, resources, actor=cli_actor(user)
                )
            apply_key_limits(conn, record, limits, cli_actor(user))
    db.show(
        out.key_document(record),
        f"Updated key {record.public_id} ({', '.join(changed)}).",
        out.key_rows([record]),
    )


@keys_app.command("delete")
@with_database
def keys_delete(key_id: KeyIdArgument, user: UserOption, *, db: Database) -> None:
    """Delete a key: its secrets stop working at once, on running servers too."""
    with db.begin() as (services, conn):
        require_user(conn, user)
        record = key_services.find_key(conn, services.hasher, user, key_id)
        key_services.delete_key(conn, record, actor=cli_actor(user))
    db.show(
        {"id": record.public_id, "deleted": True},
        f"Deleted key {record.public_id} ({record.masked}).",
    )


@keys_app.command("roll")
@with_database
def keys_roll(
    key_id: KeyIdArgument,
    user: UserOption,
    grace_seconds: Annotated[
        float,
        typer.Option(
            "--grace-seconds",
            min=0,
            max=MAX_GRACE_SECONDS,
            help="How long the old secret keeps working (0: it stops at once).",
        ),
    ] = 0,
    *,
    db: Database,
) -> None:
    """Give a key a new secret and print it, once. Id, scopes and expiry stay the same."""
    with db.begin() as (services, conn):
        require_user(conn, user)
        record = key_services.find_key(conn, services.hasher, user, key_id)
        record, secret = key_services.roll_key(
            conn, services.hasher, record, grace_seconds, actor=cli_actor(user)
        )
    ending = (
        "The old secret stopped working."
        if grace_seconds == 0
        else f"The old secret keeps working for {grace_seconds:g} seconds."
    )
    db.show(
        {
            "id": record.public_id,
            "secret": secret,
            "grace_seconds": grace_seconds,
            **out.key_document(record),
        },
        f"Rolled key {record.public_id}. {ending}",
        out.Secret("New secret", secret),
    )


@keys_app.command("import")
@with_database
def keys_import(
    secret: Annotated[
        str,
        typer.Argument(
            help="The key (32 hex characters), or - to read it from standard input.",
            show_default=False,
        ),
    ],
    user: UserOption,
    key_type: KeyTypeOption = KeyType.personal_access_token,
    app_id: AppOption = None,
    description: DescriptionOption = "Imported key",
    scope: ScopeOption = None,
    *,
    db: Database,
) -> None:
    """Import a key from the original service (32 hex characters) so it keeps working.

    Give - instead of the key to read it from standard input: it stays out of shell history.

    read -rs KEY && printf '%s\\n' "$KEY" | scopegate keys import - --user alice

    Without --scope the key gets the scope All.
    """
    if secret == "-":
        secret = sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        usage("No key given (with -, it is read from standard input).")
    _check_app_option(key_type, app_id)
    kind = CredentialKind(key_type.value)
    with db.services() as services:
        scopes = _scopes(services, scope or [ALL])
        with services.engine.begin() as conn:
            require_user(conn, user)
            record = key_services.import_key(
                conn,
                services.hasher,
                secret=secret,
                kind=kind,
                user_id=user,
                app=require_app(conn, user, app_id) if app_id else None,
                description=description,
                scopes=scopes,
                actor=cli_actor(user),
            )
    db.show(
        out.key_document(record),
        f"Imported {record.kind} {record.public_id} ({record.masked}) for {user}.",
    )


@keys_app.command("revoke-leaked")
@with_database
def keys_revoke_leaked(
    source: Annotated[
        str,
        typer.Argument(help="- : read the leaked secrets from standard input, one per line."),
    ],
    where: Annotated[
        str, option("--where", "Where they leaked (a URL), for the owners and the audit log.")
    ] = "",
    *,
    db: Database,
) -> None:
    """Revoke secrets reported leaked, at once: keys are deleted, sessions ended; each
    owner sees it on the Security page and in the audit log. Secrets never go on the
    command line: give - and pipe them in.
    """
    if source != "-":
        usage("Give - and pipe the secrets in, one per line: they stay out of shell history.")
    secrets = [line.strip() for line in sys.stdin if line.strip()]
    if not secrets:
        usage("No secrets on standard input.")
    revoked = []
    with db.services() as services:
        for secret in secrets:
            with services.transaction() as conn:
                found = leak_services.revoke_leaked(
                    conn, services.hasher, secret, source="operator", location=where
                )
            if found is not None:
                revoked.append(found)
    db.show(
        {
            "given": len(secrets),
            "revoked": [
                {"user_id": r.user_id, "type": r.credential_kind, "id": r.credential_id}
                for r in revoked
            ],
        },
        f"Revoked {len(revoked)} of {len(secrets)} secrets; the others are not ours, "
        "or were revoked already.",
        *(f"  {r.credential_kind} {r.credential_id} of {r.user_id}" for r in revoked),
    )
