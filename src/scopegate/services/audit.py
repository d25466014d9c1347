"""Who did something, for the audit log. Every service change records itself through the
`Actor` its caller passes: adapters say who calls, never what to write."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from scopegate.store import audit


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, for the audit log: never a secret."""

    user_id: str
    credential_kind: str = ""
    credential_id: str = ""
    client_address: str = ""
    request_id: str = ""

    def record(self, conn: Connection, action: str, target: str, details: str = "") -> None:
        audit.record(
            conn,
            action,
            actor_user_id=self.user_id,
            credential_kind=self.credential_kind,
            credential_id=self.credential_id,
            target=target,
            client_address=self.client_address,
            request_id=self.request_id,
            details=details,
        )


def cli_actor(user_id: str) -> Actor:
    """The operator at the command line, acting for `user_id`."""
    return Actor(user_id=user_id, credential_kind="cli", client_address="local")
