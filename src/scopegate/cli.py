"""The `scopegate` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scopegate.config import Settings, resolve

app = typer.Typer(
    help="scopegate: Clarifai-compatible identity and access server.",
    no_args_is_help=True,
    add_completion=False,
)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
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


def _settings(data_dir: Path | None, database_url: str | None, **ports) -> Settings:
    try:
        return resolve(data_dir, database_url, **ports)
    except ValueError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="SCOPEGATE_HOST")] = "127.0.0.1",
    grpc_port: Annotated[int, typer.Option(envvar="SCOPEGATE_GRPC_PORT")] = 18080,
    http_port: Annotated[int, typer.Option(envvar="SCOPEGATE_HTTP_PORT")] = 8000,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the API over gRPC and REST until SIGTERM or SIGINT."""
    import logging

    from scopegate.server import serve as run

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = _settings(
        data_dir, database_url, host=host, grpc_port=grpc_port, http_port=http_port
    )
    try:
        asyncio.run(run(settings, announce=lambda line: print(line, flush=True)))
    except OSError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


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
    from scopegate import accounts
    from scopegate.auth.passwords import hash_password, policy_violations
    from scopegate.runtime import open_services
    from scopegate.status import ApiError

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


def main() -> None:
    app()
