"""Leaked secrets: a secret reported exposed (GitHub secret scanning, GitLab's revocation
contract, an operator) is revoked at once: its key deleted, or its session ended. The change
is logged (every process drops it within the revocation bound), audited in the owner's log
with where it leaked, and kept for the owner's Security page. Nothing is kept of the
secret but its key's public id and mask."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from scopegate.auth import tokens
from scopegate.auth.principal import CredentialKind
from scopegate.auth.tokens import SecretHasher, SecretKind
from scopegate.services import change_log
from scopegate.services.audit import Actor
from scopegate.store import keys, leaks, sessions
from scopegate.store.records import now

MAX_LOCATION_LENGTH = 2000
SOURCES = ("github", "gitlab", "operator")


@dataclass(frozen=True, slots=True)
class Revoked:
    user_id: str
    credential_kind: str
    credential_id: str


def revoke_leaked(
    conn: Connection,
    hasher: SecretHasher,
    secret: str,
    *,
    source: str,
    location: str = "",
    client_address: str = "",
    request_id: str = "",
) -> Revoked | None:
    """Revoke `secret` if it is one of ours and still valid; None otherwise (not ours, never
    was, or revoked already: a repeated report changes nothing)."""
    assert source in SOURCES
    secret = secret.strip()
    kind = tokens.parse(secret)  # not one of ours: no query
    if kind is None:
        return None
    digest, at = hasher.digest(secret), now()
    location = location[:MAX_LOCATION_LENGTH]
    if kind is SecretKind.SESSION:
        session = sessions.find_by_digest(conn, digest, at)
        if session is None:
            return None
        sessions.end(conn, session.public_id)
        change_log.record(conn, "session", session.public_id)
        revoked = Revoked(session.user_id, CredentialKind.SESSION.value, session.public_id)
        masked, description, subject = tokens.mask(secret), "login session", "session"
    else:
        record = keys.find_by_digest(conn, digest, at)
        # The DELETE decides: of two reports at once, one revokes and the other finds none.
        if record is None or not keys.delete_key(conn, record.pk):
            return None
        change_log.record(conn, "key", record.public_id)
        revoked = Revoked(record.user_id, record.kind, record.public_id)
        masked, description, subject = record.masked, record.description, "key"
    leaks.record(
        conn,
        user_id=revoked.user_id,
        credential_kind=revoked.credential_kind,
        credential_id=revoked.credential_id,
        masked=masked,
        description=description,
        source=source,
        location=location,
    )
    # In the owner's audit log: who reported it is the credential kind, where it leaked the
    # details.
    reporter = Actor(
        user_id=revoked.user_id,
        credential_kind=f"leak_report:{source}",
        client_address=client_address,
        request_id=request_id,
    )
    reporter.record(
        conn,
        f"{subject}.leaked",
        f"{subject}:{revoked.credential_id}",
        f"revoked; reported by {source}" + (f" at {location}" if location else ""),
    )
    return revoked
