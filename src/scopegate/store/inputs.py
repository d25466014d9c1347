"""Inputs table access, with each input's concepts (the `input_concepts` labels)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from scopegate.store.concepts import ConceptValue
from scopegate.store.records import json_object, now, row_reader
from scopegate.store.rows import count_rows, insert_created, modify, one
from scopegate.store.schema import concepts, input_concepts, inputs

# Everything but the image bytes: lists and gets never need them.
_COLUMNS = [c for c in inputs.c if c.name != "image"]


@dataclass(frozen=True, slots=True)
class InputRecord:
    pk: int
    app_pk: int
    input_id: str
    url: str
    width: int
    height: int
    mime: str
    color_mode: str
    metadata: dict
    status_code: int
    status_details: str
    created_at: datetime
    modified_at: datetime
    concepts: tuple[ConceptValue, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ImageFacts:
    width: int
    height: int
    mime: str
    color_mode: str


_record = row_reader(InputRecord, skip=("concepts",), metadata=json_object)


def add(
    conn: Connection,
    app_pk: int,
    input_id: str,
    *,
    url: str,
    image: bytes | None,
    facts: ImageFacts | None,
    metadata: dict,
    status_code: int,
) -> int:
    values = dict(
        app_pk=app_pk,
        input_id=input_id,
        url=url,
        image=image,
        metadata=json.dumps(metadata),
        status_code=status_code,
    )
    if facts:
        values.update(
            width=facts.width, height=facts.height, mime=facts.mime, color_mode=facts.color_mode
        )
    return insert_created(conn, inputs, now(), **values)


def existing_ids(conn: Connection, app_pk: int, input_ids: Iterable[str]) -> set[str]:
    wanted = set(input_ids)
    if not wanted:
        return set()
    rows = conn.execute(
        select(inputs.c.input_id).where(inputs.c.app_pk == app_pk, inputs.c.input_id.in_(wanted))
    )
    return {row.input_id for row in rows}


def _labels(conn: Connection, input_pks: list[int]) -> dict[int, list[ConceptValue]]:
    found: dict[int, list[ConceptValue]] = {pk: [] for pk in input_pks}
    if not input_pks:
        return found
    rows = conn.execute(
        select(
            input_concepts.c.input_pk,
            input_concepts.c.value,
            concepts.c.concept_id,
            concepts.c.name,
        )
        .join(concepts, concepts.c.id == input_concepts.c.concept_pk)
        .where(input_concepts.c.input_pk.in_(input_pks))
        .order_by(input_concepts.c.position, concepts.c.concept_id)
    )
    for row in rows:
        found[row.input_pk].append(ConceptValue(row.concept_id, row.name, row.value))
    return found


def _with_labels(conn: Connection, rows) -> list[InputRecord]:
    rows = list(rows)
    labels = _labels(conn, [row.id for row in rows])
    return [_record(row, concepts=tuple(labels[row.id])) for row in rows]


def _one(conn: Connection, *conditions) -> InputRecord | None:
    query = select(*_COLUMNS).where(*conditions)
    return one(conn, query, lambda row: _with_labels(conn, [row])[0])


def get(conn: Connection, app_pk: int, input_id: str) -> InputRecord | None:
    return _one(conn, inputs.c.app_pk == app_pk, inputs.c.input_id == input_id)


def get_by_pk(conn: Connection, pk: int) -> InputRecord | None:
    return _one(conn, inputs.c.id == pk)


def image_bytes(conn: Connection, app_pk: int, input_id: str) -> bytes | None:
    """The stored image of an input (None while not downloaded)."""
    return conn.execute(
        select(inputs.c.image).where(inputs.c.app_pk == app_pk, inputs.c.input_id == input_id)
    ).scalar()


def list_for_app(
    conn: Connection,
    app_pk: int,
    *,
    offset: int,
    limit: int,
    input_ids: list[str] | None = None,
    status_code: int | None = None,
) -> list[InputRecord]:
    """Newest first, like the API's lists."""
    query = select(*_COLUMNS).where(inputs.c.app_pk == app_pk)
    if input_ids:
        query = query.where(inputs.c.input_id.in_(set(input_ids)))
    if status_code:
        query = query.where(inputs.c.status_code == status_code)
    rows = conn.execute(query.order_by(inputs.c.id.desc()).offset(offset).limit(limit))
    return _with_labels(conn, rows)


def set_labels(conn: Connection, input_pk: int, labels: dict[int, float]) -> None:
    """Replace the input's concepts with `labels` (concept pk → value), in their order."""
    conn.execute(delete(input_concepts).where(input_concepts.c.input_pk == input_pk))
    if labels:
        conn.execute(
            insert(input_concepts),
            [
                {"input_pk": input_pk, "concept_pk": pk, "value": value, "position": position}
                for position, (pk, value) in enumerate(labels.items())
            ],
        )


def label_map(conn: Connection, input_pk: int) -> dict[int, float]:
    """The input's concepts (concept pk → value) in their order: updating this dict keeps
    the order of those present and appends new ones, as a merge patch does."""
    rows = conn.execute(
        select(input_concepts.c.concept_pk, input_concepts.c.value)
        .join(concepts, concepts.c.id == input_concepts.c.concept_pk)
        .where(input_concepts.c.input_pk == input_pk)
        .order_by(input_concepts.c.position, concepts.c.concept_id)  # as `_labels` reads
    )
    return {row.concept_pk: row.value for row in rows}


def set_metadata(conn: Connection, pk: int, metadata: dict) -> None:
    modify(conn, inputs, pk, metadata=json.dumps(metadata))


def touch(conn: Connection, pk: int) -> None:
    modify(conn, inputs, pk)


def delete_many(conn: Connection, pks: list[int]) -> None:
    conn.execute(delete(inputs).where(inputs.c.id.in_(pks)))


def pending(conn: Connection, status_code: int) -> list[tuple[int, str]]:
    """(pk, url) of every input in `status_code`, oldest first."""
    rows = conn.execute(
        select(inputs.c.id, inputs.c.url)
        .where(inputs.c.status_code == status_code)
        .order_by(inputs.c.id)
    )
    return [(row.id, row.url) for row in rows]


def finish_download(
    conn: Connection,
    pk: int,
    *,
    from_code: int,
    to_code: int,
    details: str = "",
    image: bytes | None = None,
    facts: ImageFacts | None = None,
) -> bool:
    """Record a download's outcome, only if the input is still waiting for it."""
    values: dict = dict(status_code=to_code, status_details=details, modified_at=now())
    if image is not None and facts is not None:
        values.update(
            image=image,
            width=facts.width,
            height=facts.height,
            mime=facts.mime,
            color_mode=facts.color_mode,
        )
    result = conn.execute(
        update(inputs).where(inputs.c.id == pk, inputs.c.status_code == from_code).values(**values)
    )
    return result.rowcount == 1


def count(conn: Connection, app_pk: int) -> int:
    return count_rows(conn, inputs, inputs.c.app_pk == app_pk)


def count_by_status(conn: Connection, app_pk: int) -> dict[int, int]:
    """Status code → how many of the app's inputs are in it (GetInputCount)."""
    rows = conn.execute(
        select(inputs.c.status_code, func.count())
        .where(inputs.c.app_pk == app_pk)
        .group_by(inputs.c.status_code)
    )
    return {code: number for code, number in rows}
