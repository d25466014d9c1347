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
class Principal:
    user_id: str
    kind: CredentialKind
    credential_id: str  # the public id, never the secret
    scopes: frozenset[str]
    endpoints: frozenset[str]  # full method names callable regardless of scopes
    app: AppRef | None = None  # set for app-specific keys only
    expires_at: datetime | None = None
