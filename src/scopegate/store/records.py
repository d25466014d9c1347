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


@dataclass(frozen=True, slots=True)
class ModelRecord:
    pk: int
    app_pk: int
    user_id: str  # the app's owner
    app_id: str
    app_visibility: int  # a model is as visible as its app
    model_id: str
    name: str
    description: str
    notes: str
    model_type_id: str
    created_at: datetime
    modified_at: datetime
    output_info: str = ""  # as given to PostModels (protobuf JSON), "" when none was


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    pk: int
    model_pk: int
    version_id: str
    description: str
    status_code: int
    created_at: datetime
    # (concept id, name) in output order, for classifiers with registered weights.
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class WeightsRecord:
    version_pk: int
    format: str
    weights: bytes
    sha256: str
    labels: tuple[tuple[str, str], ...]
    preprocessing: str  # JSON
