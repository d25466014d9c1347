"""Sign-up: a user and its default Personal Access Token, created together or not at all."""

from __future__ import annotations

import re

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from scopegate.auth.tokens import SecretHasher
from scopegate.contract.status import ApiError, C, does_not_exist, invalid_argument
from scopegate.services.account_ids import check_new_account_id
from scopegate.services.audit import Actor, cli_actor
from scopegate.services.checks import validate_id
from scopegate.services.keys import issue_default_key
from scopegate.store import users
from scopegate.store.records import UserRecord

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TAKEN = "That user id or email is already taken."


def sign_up(
    conn: Connection,
    hasher: SecretHasher,
    user_id: str,
    email: str,
    password_hash: str | None,
    actor: Actor | None = None,
) -> tuple[UserRecord, str]:
    """Create a user and its default PAT (all scopes), audited (by default as the operator
    at the command line); returns the user and the PAT."""
    validate_id("user id", user_id)
    if not _EMAIL.fullmatch(email.strip()):
        raise invalid_argument(f"'{email}' is not an email address.")
    if users.get(conn, user_id) or users.get_by_email(conn, email):
        raise ApiError(C.CONN_INVALID_REQUEST, "Invalid request", _TAKEN)
    check_new_account_id(conn, "user id", user_id)
    try:
        user = users.create(conn, user_id, email, password_hash)
    except IntegrityError as exc:  # a concurrent sign-up won the race
        raise ApiError(C.CONN_INVALID_REQUEST, "Invalid request", _TAKEN) from exc
    actor = actor or cli_actor(user_id)
    actor.record(conn, "user.create", f"user:{user_id}")
    pat = issue_default_key(conn, hasher, user_id=user_id, app=None, actor=actor)
    return user, pat


def find_person(conn: Connection, user_id: str = "", email: str = "") -> UserRecord:
    """A person (not an organization) named by id, else by email: whom a grant or a
    membership is for."""
    person = users.get(conn, user_id) if user_id else None
    if person is None and email:
        person = users.get_by_email(conn, email)
    if person is None or not person.is_person:
        raise does_not_exist("No user with that id or email; they must sign up first.")
    return person
