"""Which ids a new account (user or organization: one namespace) may take.

Ids are compared without letter case: `Alice` beside `alice` would be two accounts that
people, logs and case-insensitive tools take for one. Reserved ids name something else
already (`me` is always the caller) or would pass for the operator.
"""

from __future__ import annotations

from sqlalchemy import Connection

from scopegate.contract.status import invalid_argument
from scopegate.store import users

RESERVED = frozenset(
    {"me", "admin", "administrator", "root", "system", "scopegate", "support", "security"}
)


def check_new_account_id(conn: Connection, kind: str, account_id: str) -> None:
    """Refuse a reserved id, or one that only letter case tells from an existing account's.
    (An exact duplicate is the caller's to refuse, with its own message.)"""
    if account_id.lower() in RESERVED:
        why = "it always names the caller" if account_id.lower() == "me" else "choose another"
        raise invalid_argument(f"The {kind} '{account_id}' is reserved: {why}.")
    other = users.get_folded(conn, account_id)
    if other is not None and other.user_id != account_id:
        raise invalid_argument(
            f"The {kind} '{account_id}' is taken: '{other.user_id}' exists, and ids that "
            "differ only in letter case would name the same account."
        )
