"""Plain records returned by the store: no SQLAlchemy rows leak out of this package."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    email: str
    password_hash: str | None
    first_name: str
    last_name: str
    created_at: datetime
    kind: str = "user"  # or "organization": owns apps, never logs in

    @property
    def is_person(self) -> bool:
        return self.kind == "user"


@dataclass(frozen=True, slots=True)
class AppRecord:
    pk: int
    user_id: str
    app_id: str
    name: str
    description: str
    visibility: int
    created_at: datetime
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRecord:
    pk: int
    public_id: str
    kind: str
    user_id: str
    app_user_id: str | None
    app_id: str | None
    description: str
    scopes: tuple[str, ...]
    endpoints: tuple[str, ...]
    masked: str
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    modified_at: datetime
