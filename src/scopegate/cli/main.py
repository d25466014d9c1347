"""The `scopegate` command line."""

from __future__ import annotations

import asyncio
import enum
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from scopegate.cli import output as out
from scopegate.contract.visibility import NAMES as VISIBILITY_NAMES
from scopegate.server.config import Settings, resolve

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from scopegate.context import Services
    from scopegate.store.records import AppRecord

app = typer.Typer(
    help="scopegate: Clarifai-compatible identity and access server.",
    no_args_is_help=True,
    add_completion=False,
)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(
    help="Manage Personal Access Tokens and app-specific API keys. Secrets are shown once, "
    "when made; elsewhere a key is named by its public id.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
apps_app = typer.Typer(help="Manage apps.", no_args_is_help=True)
app.add_typer(apps_app, name="apps")
models_app = typer.Typer(
    help="Manage models: register ONNX classifier weights, list an app's models.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")
console = Console()
errors = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="SCOPEGATE_DATA_DIR",
        help="Directory for the SQLite database and the server secret.",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SCOPEGATE_DATABASE_URL",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db.",
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _settings(data_dir: Path | None, database_url: str | None, **options) -> Settings:
    try:
        return resolve(data_dir, database_url, **options)
    except ValueError as exc:
        # One line, never read as markup: messages name files, whose paths may hold brackets.
        out.fail(str(exc), 2)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="SCOPEGATE_HOST")] = "127.0.0.1",
    grpc_port: Annotated[int, typer.Option(envvar="SCOPEGATE_GRPC_PORT")] = 18080,
    http_port: Annotated[int, typer.Option(envvar="SCOPEGATE_HTTP_PORT")] = 8000,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            envvar="SCOPEGATE_TLS_CERT",
            help="PEM certificate chain (server certificate first): serve gRPC and HTTPS over "
            "TLS. Needs --tls-key.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key",
            envvar="SCOPEGATE_TLS_KEY",
            help="Unencrypted PEM private key of --tls-cert.",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="CIDR of a reverse proxy whose X-Forwarded-For names the client (repeatable; "
            "default: SCOPEGATE_TRUSTED_PROXIES, comma-separated, else none).",
        ),
    ] = None,
) -> None:
    """Serve the API over gRPC and REST until SIGTERM or SIGINT."""
    import logging

    from scopegate.server.serve import serve as run

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = _settings(
        data_dir,
        database_url,
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        trusted_proxies=trusted_proxy or (),
    )
    try:
        asyncio.run(run(settings, announce=lambda line: print(line, flush=True)))
    except OSError as exc:
        out.fail(str(exc))


@users_app.command("create")
def users_create(
    user_id: Annotated[str, typer.Argument(help="The new user's id.")],
    email: Annotated[str, typer.Option(help="The user's email address.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from standard input.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Create a user and print its default Personal Access Token, once."""
    from scopegate.auth.passwords import hash_password, policy_violations
    from scopegate.contract.status import ApiError
    from scopegate.server.runtime import open_services
    from scopegate.services import accounts

    password_hash = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        problems = policy_violations(password, user_id=user_id, email=email)
        if problems:
            errors.print("[red]error:[/red] the password " + "; ".join(problems) + ".")
            raise typer.Exit(2)
        password_hash = hash_password(password)
    services = open_services(_settings(data_dir, database_url))
    try:
        with services.engine.begin() as conn:
            user, pat = accounts.sign_up(conn, services.hasher, user_id, email, password_hash)
    except ApiError as exc:
        errors.print(f"[red]error:[/red] {exc.details or exc.description}")
        raise typer.Exit(1) from None
    finally:
        services.engine.dispose()
    if as_json:
        print(json.dumps({"user_id": user.user_id, "pat": pat}))
        return
    console.print(f"Created user [bold]{user.user_id}[/bold] <{user.email}>.")
    console.print("Default Personal Access Token (shown once; store it safely):")
    print(pat)


# ---------------------------------------------------------------------------------------
# Credential administration: keys, apps, audit. Every change runs in one transaction,
# logs the changed key so running servers drop it from their caches, and is audited.


class KeyType(enum.StrEnum):
    personal_access_token = "personal_access_token"
    app_specific_key = "app_specific_key"


class Visibility(enum.StrEnum):
    private = "private"
    org = "org"
    public = "public"


VISIBILITY_VALUES = {Visibility(name): value for value, name in VISIBILITY_NAMES.items()}
MAX_GRACE_SECONDS = 30 * 86400

UserOption = Annotated[
    str, typer.Option("--user", help="The user the credentials belong to.", show_default=False)
]
KeyIdArgument = Annotated[
    str, typer.Argument(help="The key's public id, or its secret.", show_default=False)
]
KeyTypeOption = Annotated[KeyType, typer.Option("--type", help="The kind of key.")]
AppOption = Annotated[
    str | None,
    typer.Option(
        "--app", help="The user's app an app-specific key is tied to.", show_default=False
    ),
]
DescriptionOption = Annotated[str, typer.Option("--description", help="What the key is for.")]
ScopeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        help="A scope, as Inputs_Get or Inputs:Get; repeat the option (or separate with "
        "commas) for several. Scopes they depend on are added.",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    list[str] | None,
    typer.Option(
        "--endpoint",
        help="A method the key may call whatever its scopes, e.g. "
        "/clarifai.api.V2/PostModelOutputs; repeatable.",
        show_default=False,
    ),
]
ExpiresOption = Annotated[
    int | None,
    typer.Option(
        "--expires-in-days",
        min=1,
        help="Expire the key this many days from now.",
        show_default=False,
    ),
]


def _usage(message: str) -> NoReturn:
    out.fail(message, 2)


@contextmanager
def _open(data_dir: Path | None, database_url: str | None) -> Iterator[Services]:
    """The services for one command; an ApiError or database error becomes one stderr line."""
    from sqlalchemy.exc import SQLAlchemyError

    from scopegate.contract.status import ApiError
    from scopegate.server.runtime import open_services

    settings = _settings(data_dir, database_url)
    try:
        services = open_services(settings)
    except (OSError, ValueError, SQLAlchemyError) as exc:
        out.fail(f"cannot open the database: {_first_line(exc)}")
    try:
        yield services
    except ApiError as exc:
        out.fail(exc.details or exc.description)
    except SQLAlchemyError as exc:
        out.fail(f"database error: {_first_line(exc)}")
    finally:
        services.engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _user(conn: Connection, user_id: str) -> None:
    from scopegate.contract.status import does_not_exist
    from scopegate.store import users

    if users.get(conn, user_id) is None:
        raise does_not_exist(f"No user '{user_id}'.")


def _app(conn: Connection, user_id: str, app_id: str) -> AppRecord:
    from scopegate.contract.status import does_not_exist
    from scopegate.store import apps

    found = apps.get(conn, user_id, app_id)
    if found is None:
        raise does_not_exist(f"User '{user_id}' has no app '{app_id}'.")
    return found


def _check_app_option(key_type: KeyType, app_id: str | None) -> None:
    if key_type is KeyType.app_specific_key and not app_id:
        _usage("An app-specific key needs --app APP_ID (an app of that user).")
    if key_type is KeyType.personal_access_token and app_id:
        _usage(
            "A personal access token is not tied to an app: "
            "drop --app or use --type app_specific_key."
        )


def _names(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",")]


def _scopes(services: Services, values: list[str] | None) -> frozenset[str]:
    """Canonical scopes plus their dependencies; unknown ones are a usage error."""
    from scopegate.contract.status import ApiError
    from scopegate.services import accounts

    try:
        return accounts.key_scopes(services.scopes, _names(values))
    except ApiError as exc:
        _usage(exc.details)


def _endpoints(services: Services, values: list[str] | None) -> frozenset[str]:
    from scopegate.contract.status import ApiError
    from scopegate.services import accounts

    try:
        return accounts.key_endpoints(services.catalog, [v for v in _names(values) if v])
    except ApiError as exc:
        _usage(exc.details)


def _expiry(days: int | None) -> datetime | None:
    from scopegate.store.records import now

    return now() + timedelta(days=days) if days else None


@keys_app.command("list")
def keys_list(
    user: UserOption,
    key_type: Annotated[
        KeyType | None, typer.Option("--type", help="Only keys of this kind.", show_default=False)
    ] = None,
    app_id: Annotated[
        str | None, typer.Option("--app", help="Only keys tied to this app.", show_default=False)
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """List a user's keys: public ids and masked secrets, never a secret."""
    from scopegate.store import keys

    with _open(data_dir, database_url) as services, services.engine.connect() as conn:
        _user(conn, user)
        app_pk = _app(conn, user, app_id).pk if app_id else None
        found = keys.list_for_user(
            conn,
            user,
            kind=key_type.value if key_type else None,
            app_pk=app_pk,
            limit=10**9,
        )
    if as_json:
        out.emit_json({"user_id": user, "keys": [out.key_document(k) for k in found]})
        return
    out.print_table(
        f"Keys of {user}",
        out.KEY_COLUMNS,
        out.key_rows(found),
        no_wrap=("public id", "masked"),
        empty=f"User {user} has no such keys.",
    )


@keys_app.command("create")
def keys_create(
    user: UserOption,
    key_type: KeyTypeOption = KeyType.personal_access_token,
    app_id: AppOption = None,
    description: DescriptionOption = "",
    scope: ScopeOption = None,
    endpoint: EndpointOption = None,
    expires_in_days: ExpiresOption = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Create a key and print its secret, once.

    Without --scope or --endpoint the key gets the scope All.
    """
    from scopegate.auth.principal import CredentialKind
    from scopegate.auth.scopes import ALL
    from scopegate.services import accounts

    _check_app_option(key_type, app_id)
    with _open(data_dir, database_url) as services:
        scopes = _scopes(services, scope if scope or endpoint else [ALL])
        endpoints = _endpoints(services, endpoint)
        with services.engine.begin() as conn:
            _user(conn, user)
            record, secret = accounts.create_key(
                conn,
                services.hasher,
                kind=CredentialKind(key_type.value),
                user_id=user,
                app=_app(conn, user, app_id) if app_id else None,
                description=description,
                scopes=scopes,
                endpoints=endpoints,
                expires_at=_expiry(expires_in_days),
                actor=accounts.cli_actor(user),
            )
    if as_json:
        out.emit_json({"id": record.public_id, "secret": secret, **out.key_document(record)})
        return
    out.print_message(f"Created {record.kind} {record.public_id} for {user}.")
    out.print_secret("Secret", secret)


@keys_app.command("patch")
def keys_patch(
    key_id: KeyIdArgument,
    user: UserOption,
    description: Annotated[
        str | None,
        typer.Option("--description", help="New description.", show_default=False),
    ] = None,
    scope: ScopeOption = None,
    endpoint: EndpointOption = None,
    expires_in_days: ExpiresOption = None,
    no_expiry: Annotated[
        bool, typer.Option("--no-expiry", help="Remove the key's expiry.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Change a key: the fields given are overwritten, the others kept.

    --scope replaces all of the key's scopes (dependencies are added again).
    """
    from scopegate.services import accounts

    if expires_in_days is not None and no_expiry:
        _usage("Give --expires-in-days or --no-expiry, not both.")
    changed = [
        name
        for name, given in (
            ("description", description is not None),
            ("scopes", scope is not None),
            ("endpoints", endpoint is not None),
            ("expires_at", expires_in_days is not None or no_expiry),
        )
        if given
    ]
    if not changed:
        _usage(
            "Nothing to change: give --description, --scope, --endpoint, --expires-in-days "
            "or --no-expiry."
        )
    with _open(data_dir, database_url) as services:
        scopes = _scopes(services, scope) if scope is not None else None
        endpoints = _endpoints(services, endpoint) if endpoint is not None else None
        with services.engine.begin() as conn:
            _user(conn, user)
            record = accounts.find_key(conn, services.hasher, user, key_id)
            if no_expiry:
                expires_at = None
            elif expires_in_days is not None:
                expires_at = _expiry(expires_in_days)
            else:
                expires_at = record.expires_at
            record = accounts.patch_key(
                conn,
                record,
                description=record.description if description is None else description,
                scopes=record.scopes if scopes is None else scopes,
                endpoints=record.endpoints if endpoints is None else endpoints,
                expires_at=expires_at,
                actor=accounts.cli_actor(user),
                details="changed: " + ", ".join(changed),
            )
    if as_json:
        out.emit_json(out.key_document(record))
        return
    out.print_message(f"Updated key {record.public_id} ({', '.join(changed)}).")
    out.print_table("", out.KEY_COLUMNS, out.key_rows([record]), no_wrap=("public id", "masked"))


@keys_app.command("delete")
def keys_delete(
    key_id: KeyIdArgument,
    user: UserOption,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Delete a key: its secrets stop working at once, on running servers too."""
    from scopegate.services import accounts

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _user(conn, user)
        record = accounts.find_key(conn, services.hasher, user, key_id)
        accounts.delete_key(conn, record, actor=accounts.cli_actor(user))
    if as_json:
        out.emit_json({"id": record.public_id, "deleted": True})
        return
    out.print_message(f"Deleted key {record.public_id} ({record.masked}).")


@keys_app.command("roll")
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
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Give a key a new secret and print it, once. Id, scopes and expiry stay the same."""
    from scopegate.services import accounts
    from scopegate.store import keys

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _user(conn, user)
        record = accounts.find_key(conn, services.hasher, user, key_id)
        secret = accounts.roll_key(conn, services.hasher, record, grace_seconds)
        accounts.cli_actor(user).record(
            conn, "key.roll", f"key:{record.public_id}", f"grace_seconds={grace_seconds:g}"
        )
        record = keys.get(conn, user, record.public_id)
    if as_json:
        out.emit_json(
            {
                "id": record.public_id,
                "secret": secret,
                "grace_seconds": grace_seconds,
                **out.key_document(record),
            }
        )
        return
    ending = (
        "The old secret stopped working."
        if grace_seconds == 0
        else f"The old secret keeps working for {grace_seconds:g} seconds."
    )
    out.print_message(f"Rolled key {record.public_id}. {ending}")
    out.print_secret("New secret", secret)


@keys_app.command("import")
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
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Import a key from the original service (32 hex characters) so it keeps working.

    Give - instead of the key to read it from standard input: it stays out of shell history.

    read -rs KEY && printf '%s\\n' "$KEY" | scopegate keys import - --user alice

    Without --scope the key gets the scope All.
    """
    from scopegate.auth.principal import CredentialKind
    from scopegate.auth.scopes import ALL
    from scopegate.services import accounts
    from scopegate.store import keys

    if secret == "-":
        secret = sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        _usage("No key given (with -, it is read from standard input).")
    _check_app_option(key_type, app_id)
    kind = CredentialKind(key_type.value)
    with _open(data_dir, database_url) as services:
        scopes = _scopes(services, scope or [ALL])
        with services.engine.begin() as conn:
            _user(conn, user)
            public_id = accounts.import_key(
                conn,
                services.hasher,
                secret=secret,
                kind=kind,
                user_id=user,
                app=_app(conn, user, app_id) if app_id else None,
                description=description,
                scopes=scopes,
            )
            accounts.cli_actor(user).record(
                conn, "key.import", f"key:{public_id}", f"type={kind.value}"
            )
            record = keys.get(conn, user, public_id)
    if as_json:
        out.emit_json(out.key_document(record))
        return
    out.print_message(f"Imported {record.kind} {record.public_id} ({record.masked}) for {user}.")


@apps_app.command("list")
def apps_list(
    user: UserOption,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """List a user's apps."""
    from scopegate.store import apps

    with _open(data_dir, database_url) as services, services.engine.connect() as conn:
        _user(conn, user)
        found = apps.list_for_user(conn, user, limit=10**9)
    if as_json:
        out.emit_json({"user_id": user, "apps": [out.app_document(a) for a in found]})
        return
    documents = [out.app_document(a) for a in found]
    out.print_table(
        f"Apps of {user}",
        ("app id", "name", "description", "visibility", "created"),
        [
            [d["id"], d["name"], d["description"], d["visibility"], out.when(a.created_at)]
            for d, a in zip(documents, found, strict=True)
        ],
        no_wrap=("app id",),
        empty=f"User {user} has no apps.",
    )


@apps_app.command("create")
def apps_create(
    app_id: Annotated[str, typer.Argument(help="The new app's id.", show_default=False)],
    user: UserOption,
    description: Annotated[str, typer.Option("--description", help="What the app is for.")] = "",
    visibility: Annotated[
        Visibility, typer.Option("--visibility", help="Who may see the app.")
    ] = Visibility.private,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Create an app and print its default API key (scope All), once."""
    from scopegate.services import accounts

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _user(conn, user)
        actor = accounts.cli_actor(user)
        record, default_key = accounts.create_app(
            conn,
            services.hasher,
            user,
            app_id,
            description=description,
            visibility=VISIBILITY_VALUES[visibility],
            actor=actor,
        )
        actor.record(conn, "app.create", f"app:{record.user_id}/{record.app_id}")
    if as_json:
        out.emit_json({**out.app_document(record), "default_api_key": default_key})
        return
    out.print_message(f"Created app {record.app_id} of {user} ({visibility.value}).")
    out.print_secret("Default API key", default_key)


@apps_app.command("delete")
def apps_delete(
    app_id: Annotated[str, typer.Argument(help="The app's id.", show_default=False)],
    user: UserOption,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Delete an app and every key tied to it."""
    from scopegate.services import accounts

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _user(conn, user)
        record = _app(conn, user, app_id)
        removed = accounts.delete_app(conn, record)
        accounts.cli_actor(user).record(
            conn,
            "app.delete",
            f"app:{record.user_id}/{record.app_id}",
            f"keys deleted: {len(removed)}",
        )
    if as_json:
        out.emit_json({"id": record.app_id, "deleted": True, "keys_deleted": removed})
        return
    out.print_message(f"Deleted app {record.app_id} of {user} and its {len(removed)} key(s).")


@app.command("audit")
def audit_list(
    user: Annotated[
        str | None,
        typer.Option(
            "--user", help="Only events by this user (default: everyone's).", show_default=False
        ),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action", help="Only this action, e.g. key.roll; repeatable.", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many events.")] = 100,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Show the audit log of credential events, newest first. It never holds a secret."""
    from scopegate.store import audit

    with _open(data_dir, database_url) as services, services.engine.connect() as conn:
        events = audit.search(conn, user, actions=_names(action) or None, limit=limit)
    if as_json:
        out.emit_json({"events": [out.audit_document(e) for e in events]})
        return
    out.print_table(
        "Audit log" + (f" of {user}" if user else ""),
        ("time", "action", "actor", "credential", "target", "client", "request id", "details"),
        [
            [
                out.when(e.at),
                e.action,
                e.actor_user_id or "-",
                f"{e.credential_kind} {e.credential_id}".strip() or "-",
                e.target or "-",
                e.client_address or "-",
                e.request_id or "-",
                e.details,
            ]
            for e in events
        ],
        no_wrap=("time", "action", "credential"),
        empty="No audit events.",
    )


# ---------------------------------------------------------------------------------------
# Models: weights are registered here (not over the API), then served by every instance.


def _floats3(value: str | None, option: str) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        _usage(f"{option} takes three numbers separated by commas, e.g. 0.485,0.456,0.406.")
    return parts  # type: ignore[return-value]


def _input_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= 4096 for p in parts):
        _usage("--input-size takes N or HxW pixels (1 to 4096), e.g. 224 or 224x224.")
    return int(parts[0]), int(parts[1])


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        _usage(f"cannot read the {what} file {path}: {exc.strerror or exc}")


@models_app.command("register")
def models_register(
    user: Annotated[str, typer.Argument(help="The app's owner.", show_default=False)],
    app_id: Annotated[str, typer.Argument(help="The app.", show_default=False)],
    model_id: Annotated[
        str,
        typer.Argument(
            help="The model; created (visual-classifier) if missing.", show_default=False
        ),
    ],
    onnx: Annotated[Path, typer.Option("--onnx", help="The ONNX model file.", show_default=False)],
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="The labels file: one label per line in output order (or id<TAB>name).",
            show_default=False,
        ),
    ],
    input_size: Annotated[
        str | None,
        typer.Option(
            "--input-size",
            help="N or HxW: the size images are resized to. Default: the model's fixed input "
            "size, else 224.",
            show_default=False,
        ),
    ] = None,
    mean: Annotated[
        str | None,
        typer.Option("--mean", help="Per-channel mean subtracted after scaling to 0..1: R,G,B."),
    ] = None,
    std: Annotated[
        str | None,
        typer.Option("--std", help="Per-channel divisor after subtracting the mean: R,G,B."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Name of a newly created model.")] = "",
    description: Annotated[str, typer.Option("--description", help="What this version is.")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Store ONNX classifier weights as a new version, after running them once.

    The new version becomes the model's default at once on every server sharing the
    database.
    """
    from scopegate.runners.base import RunnerError
    from scopegate.services import model_registry

    onnx_bytes = _read(onnx, "ONNX")
    try:
        labels_text = _read(labels, "labels").decode("utf-8")
    except UnicodeDecodeError:
        _usage(f"the labels file {labels} is not UTF-8 text.")
    try:
        weights = model_registry.prepare_weights(
            onnx_bytes,
            labels_text,
            input_size=_input_size(input_size),
            mean=_floats3(mean, "--mean"),
            std=_floats3(std, "--std"),
        )
    except RunnerError as exc:
        out.fail(f"the weights were not registered: {exc}")
    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _user(conn, user)
        model, version = model_registry.register_weights(
            conn,
            _app(conn, user, app_id),
            model_id,
            weights,
            name=name,
            description=description,
        )
    document = {
        "user_id": user,
        "app_id": app_id,
        "model_id": model.model_id,
        "version_id": version.version_id,
        "labels": len(weights.labels),
        "input_size": [weights.preprocessing.height, weights.preprocessing.width],
        "layout": weights.preprocessing.layout,
    }
    if as_json:
        out.emit_json(document)
        return
    out.print_message(
        f"Registered version {version.version_id} of {user}/{app_id}/{model.model_id}: "
        f"{len(weights.labels)} labels, input {weights.preprocessing.height}x"
        f"{weights.preprocessing.width} {weights.preprocessing.layout}."
    )


@models_app.command("list")
def models_list(
    user: Annotated[str, typer.Argument(help="The app's owner.", show_default=False)],
    app_id: Annotated[str, typer.Argument(help="The app.", show_default=False)],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """List an app's models with their default version."""
    from scopegate.store import models

    with _open(data_dir, database_url) as services, services.engine.connect() as conn:
        _user(conn, user)
        found = models.list_models(conn, app_pk=_app(conn, user, app_id).pk, limit=10**9)
        latest = [models.latest_version(conn, m.pk) for m in found]
    documents = [
        {
            "id": m.model_id,
            "name": m.name,
            "model_type_id": m.model_type_id,
            "version_id": v.version_id if v else None,
            "labels": len(v.labels) if v else 0,
            "created_at": out.iso(m.created_at),
        }
        for m, v in zip(found, latest, strict=True)
    ]
    if as_json:
        out.emit_json({"user_id": user, "app_id": app_id, "models": documents})
        return
    out.print_table(
        f"Models of {user}/{app_id}",
        ["id", "type", "version", "labels"],
        [
            [d["id"], d["model_type_id"], d["version_id"] or "(no weights)", str(d["labels"])]
            for d in documents
        ],
        empty=f"App {user}/{app_id} has no models.",
    )


# Last: `scopegate orgs` builds on the options and helpers above.
from scopegate.cli.orgs import orgs_app  # noqa: E402

app.add_typer(orgs_app, name="orgs")


def _is(exc: BaseException, class_name: str) -> bool:
    # By name: depending on its version, Typer raises click's exceptions or its own copies.
    return any(cls.__name__ == class_name for cls in type(exc).__mro__)


def main() -> None:
    """Run the CLI; a usage error is one line on stderr and exit code 2, as any error is."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:
        if _is(exc, "NoArgsIsHelpError"):
            exc.show()
        elif _is(exc, "UsageError"):
            ctx = getattr(exc, "ctx", None)
            hint = f" Try '{ctx.command_path} --help'." if ctx else ""
            out.error_line(exc.format_message().rstrip(".") + "." + hint)
        elif _is(exc, "ClickException"):
            out.error_line(exc.format_message())
        elif _is(exc, "Abort"):
            out.error_line("aborted.")
            sys.exit(1)
        else:
            raise
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
