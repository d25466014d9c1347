"""`scopegate users`: accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from scopegate.auth.passwords import hash_password, policy_violations
from scopegate.cli import output as out
from scopegate.cli.common import Database, usage, with_database
from scopegate.services.users import sign_up

users_app = typer.Typer(help="Manage users.", no_args_is_help=True)


@users_app.command("create")
@with_database
def users_create(
    user_id: Annotated[str, typer.Argument(help="The new user's id.")],
    email: Annotated[str, typer.Option(help="The user's email address.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from standard input.")
    ] = False,
    *,
    db: Database,
) -> None:
    """Create a user and print its default Personal Access Token, once."""
    password_hash = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        problems = policy_violations(password, user_id=user_id, email=email)
        if problems:
            usage("the password " + "; ".join(problems) + ".")
        password_hash = hash_password(password)
    with db.begin() as (services, conn):
        user, pat = sign_up(conn, services.hasher, user_id, email, password_hash)
    db.show(
        {"user_id": user.user_id, "pat": pat},
        f"Created user {user.user_id} <{user.email}>.",
        out.Secret("Default Personal Access Token", pat),
    )
