"""`scopegate users`: accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from scopegate.auth.limits import LimitsError, parse_rates
from scopegate.auth.passwords import hash_password, policy_violations
from scopegate.cli import output as out
from scopegate.cli.common import Database, names, usage, with_database
from scopegate.cli.key_limits import NoRateLimitOption, RateLimitOption
from scopegate.services.audit import cli_actor
from scopegate.services.limits import set_user_rates, user_rates
from scopegate.services.users import sign_up
from scopegate.store import users

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


@users_app.command("limits")
@with_database
def users_limits(
    user_id: Annotated[str, typer.Argument(help="The user whose rates to set.")],
    rate_limit: RateLimitOption = None,
    no_rate_limit: NoRateLimitOption = False,
    *,
    db: Database,
) -> None:
    """Set a user's rate limits, shared by all its credentials (or show them)."""
    if rate_limit and no_rate_limit:
        usage("Give --rate-limit or --no-rate-limit, not both.")
    try:
        rates = parse_rates(names(rate_limit))
    except LimitsError as exc:
        usage(str(exc))
    with db.begin() as (_, conn):
        if rate_limit or no_rate_limit:
            set_user_rates(conn, user_id, rates, actor=cli_actor(user_id))
        elif users.get(conn, user_id) is None:
            usage(f"No user '{user_id}'.")
        rates = user_rates(conn, user_id)
    shown = ", ".join(str(r) for r in rates) or "none"
    db.show(
        {"user_id": user_id, "rate_limits": [str(r) for r in rates]},
        f"Rate limits of {user_id}: {shown}.",
    )
