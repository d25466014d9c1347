"""Plain records returned by the store: no SQLAlchemy rows leak out of this package."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

R = TypeVar("R")


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def json_strings(value: str) -> tuple[str, ...]:
    """A JSON list of strings (scopes, endpoints) as stored, read back as a tuple."""
    return tuple(json.loads(value))


def stored_grant(scopes: Iterable[str], endpoints: Iterable[str]) -> dict[str, str]:
    """The `scopes` and `endpoints` columns of a grant (a key's, a collaborator's) as
    stored: sorted JSON lists, read back by `json_strings`."""
    return {"scopes": json.dumps(sorted(scopes)), "endpoints": json.dumps(sorted(endpoints))}


def json_object(value: str | None) -> dict:
    """A JSON object as stored (metadata); none stored reads as empty."""
    return json.loads(value or "{}")


def row_reader(
    record_type: Callable[..., R],
    *,
    skip: tuple[str, ...] = (),
    **convert: Callable[[Any], Any],
) -> Callable[..., R]:
    """A function building `record_type` (a dataclass) from a row whose columns carry its
    field names: `pk` from column `id`, timestamps made UTC, fields in `convert` through
    their function, fields in `skip` (defaulted ones the row has no column for) given as
    keywords to the reader. Worked out once per record type, not per row."""
    plan: list[tuple[str, str, Callable[[Any], Any] | None]] = []
    for f in fields(record_type):  # type: ignore[arg-type]
        if f.name in skip:
            continue
        column = "id" if f.name == "pk" else f.name
        conv = convert.get(f.name) or (utc if "datetime" in str(f.type) else None)
        plan.append((f.name, column, conv))

    def read(row: Any, **extra: Any) -> R:
        mapping = row._mapping
        values = {
            name: conv(mapping[column]) if conv else mapping[column] for name, column, conv in plan
        }
        return record_type(**values, **extra)

    return read


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
class KeyResources:
    """What a fine-grained PAT is limited to: apps as (owner, app id), whole organizations."""

    apps: tuple[tuple[str, str], ...] = ()
    orgs: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {"apps": [f"{u}/{a}" for u, a in sorted(self.apps)], "orgs": sorted(self.orgs)}
        )

    @staticmethod
    def from_json(value: str | None) -> KeyResources | None:
        if value is None:
            return None
        stored = json.loads(value)
        apps = tuple(tuple(name.split("/", 1)) for name in stored.get("apps", ()))
        return KeyResources(apps, tuple(stored.get("orgs", ())))  # type: ignore[arg-type]

    def names(self) -> dict[str, list[str]]:
        """As the API, the CLI and the portal show it."""
        return {"apps": [f"{u}/{a}" for u, a in self.apps], "orgs": list(self.orgs)}


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
    resources: KeyResources | None = None  # a fine-grained PAT's limits


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
