"""Concepts table access. Names are matched through `name_folded` (Python's casefold)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from scopegate.store.records import json_object, now, row_reader
from scopegate.store.rows import every, insert_created, modify, one
from scopegate.store.schema import concepts


@dataclass(frozen=True, slots=True)
class ConceptRecord:
    pk: int
    app_pk: int
    concept_id: str
    name: str
    language: str
    metadata: dict
    created_at: datetime
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class ConceptValue:
    """A concept as it applies to one input: a label's 1 (present) or 0 (absent), or a
    model's score for an image."""

    id: str
    name: str
    value: float


def fold(name: str) -> str:
    return name.casefold()


_record = row_reader(ConceptRecord, metadata=json_object)


def add(
    conn: Connection,
    app_pk: int,
    concept_id: str,
    *,
    name: str,
    language: str = "",
    metadata: dict | None = None,
) -> int:
    return insert_created(
        conn,
        concepts,
        now(),
        app_pk=app_pk,
        concept_id=concept_id,
        name=name,
        name_folded=fold(name),
        language=language,
        metadata=json.dumps(metadata or {}),
    )


def get(conn: Connection, app_pk: int, concept_id: str) -> ConceptRecord | None:
    query = select(concepts).where(concepts.c.app_pk == app_pk, concepts.c.concept_id == concept_id)
    return one(conn, query, _record)


def get_many(conn: Connection, app_pk: int, concept_ids: list[str]) -> dict[str, ConceptRecord]:
    if not concept_ids:
        return {}
    rows = conn.execute(
        select(concepts).where(
            concepts.c.app_pk == app_pk, concepts.c.concept_id.in_(set(concept_ids))
        )
    )
    return {row.concept_id: _record(row) for row in rows}


def list_for_app(
    conn: Connection, app_pk: int, *, offset: int, limit: int, name_pattern: str | None = None
) -> list[ConceptRecord]:
    """Oldest first. `name_pattern`: a LIKE pattern over folded names (escape char '\\')."""
    query = select(concepts).where(concepts.c.app_pk == app_pk)
    if name_pattern is not None:
        query = query.where(concepts.c.name_folded.like(name_pattern, escape="\\"))
    return every(conn, query.order_by(concepts.c.id).offset(offset).limit(limit), _record)


def set_fields(conn: Connection, pk: int, *, name: str, language: str, metadata: dict) -> None:
    modify(
        conn,
        concepts,
        pk,
        name=name,
        name_folded=fold(name),
        language=language,
        metadata=json.dumps(metadata),
    )
