"""Who is calling: the result of authentication."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class CredentialKind(enum.StrEnum):
    PAT = "personal_access_token"
    APP_KEY = "app_specific_key"
    SESSION = "session_token"


@dataclass(frozen=True, slots=True)
class AppRef:
    user_id: str
    app_id: str


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """What a fine-grained PAT may reach: named apps (`(owner, app)`) and whole
    organizations (their account and every app they own). Nothing else, not even its own
    user's account: such a token cannot list apps or mint keys."""

    apps: frozenset[tuple[str, str]] = frozenset()
    orgs: frozenset[str] = frozenset()

    def covers(self, user_id: str, app_id: str) -> bool:
        return user_id in self.orgs or (app_id != "" and (user_id, app_id) in self.apps)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    kind: CredentialKind
    credential_id: str  # the public id, never the secret
    scopes: frozenset[str]
    endpoints: frozenset[str]  # full method names callable regardless of scopes
    app: AppRef | None = None  # set for app-specific keys only
    expires_at: datetime | None = None
    # A fine-grained PAT's resources, loaded with the credential; None: unlimited.
    resources: ResourceLimits | None = None
    created_at: datetime | None = None  # a key's (organizations' max lifetime)
