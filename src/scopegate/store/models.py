"""Models and their versions; registered weights are in `model_weights`."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import Connection, Select, delete, insert, select, update

from scopegate.store.paging import newest_first
from scopegate.store.records import (
    ModelRecord,
    ModelVersionRecord,
    WeightsRecord,
    now,
    row_reader,
)
from scopegate.store.rows import count_rows, every, insert_created, insert_row, modify, one
from scopegate.store.schema import apps, model_aliases, model_versions, model_weights, models

_MODEL_COLUMNS = (
    models,
    apps.c.user_id,
    apps.c.app_id,
    apps.c.visibility.label("app_visibility"),
)


_model = row_reader(ModelRecord)


def _select_models():
    return select(*_MODEL_COLUMNS).join(apps, apps.c.id == models.c.app_pk)


def create(
    conn: Connection,
    app_pk: int,
    model_id: str,
    *,
    model_type_id: str,
    name: str = "",
    description: str = "",
    notes: str = "",
    output_info: str = "",
) -> int:
    return insert_created(
        conn,
        models,
        now(),
        app_pk=app_pk,
        model_id=model_id,
        name=name or model_id,
        description=description,
        notes=notes,
        model_type_id=model_type_id,
        output_info=output_info,
    )


def get(conn: Connection, app_pk: int, model_id: str) -> ModelRecord | None:
    """The model of `app_pk` whose id, else one of whose alias ids, is `model_id`."""
    own = _select_models().where(models.c.app_pk == app_pk, models.c.model_id == model_id)
    found = one(conn, own, _model)
    if found is None:  # an alias costs a query only when the id is not a model's own
        aliased = (
            _select_models()
            .join(model_aliases, model_aliases.c.model_pk == models.c.id)
            .where(model_aliases.c.app_pk == app_pk, model_aliases.c.alias_id == model_id)
        )
        found = one(conn, aliased, _model)
    return found


def add_alias(conn: Connection, model: ModelRecord, alias_id: str) -> None:
    """Let `model` answer to `alias_id` too (idempotent)."""
    taken = conn.execute(
        select(model_aliases.c.model_pk).where(
            model_aliases.c.app_pk == model.app_pk, model_aliases.c.alias_id == alias_id
        )
    ).first()
    if taken is None:
        conn.execute(
            insert(model_aliases).values(app_pk=model.app_pk, alias_id=alias_id, model_pk=model.pk)
        )


def list_models(
    conn: Connection,
    *,
    app_pk: int | None = None,
    user_id: str | None = None,
    model_type_id: str = "",
    offset: int = 0,
    limit: int = 128,
) -> list[ModelRecord]:
    """Models of one app, or of every app of a user; newest first."""
    query = _select_models()
    if app_pk is not None:
        query = query.where(models.c.app_pk == app_pk)
    if user_id is not None:
        query = query.where(apps.c.user_id == user_id)
    if model_type_id:
        query = query.where(models.c.model_type_id == model_type_id)
    return every(conn, newest_first(query, models, offset, limit), _model)


def update_model(conn: Connection, pk: int, *, name: str, description: str, notes: str) -> None:
    modify(conn, models, pk, name=name, description=description, notes=notes)


def delete_model(conn: Connection, pk: int) -> None:
    conn.execute(delete(models).where(models.c.id == pk))


# --- versions ----------------------------------------------------------------------------


def _labels(stored: str | None) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(pair) for pair in json.loads(stored)) if stored else ()


_version = row_reader(ModelVersionRecord, labels=_labels)
_weights = row_reader(WeightsRecord, weights=bytes, labels=_labels)


def _versions_of(model_pk: int) -> Select:
    return _select_versions().where(model_versions.c.model_pk == model_pk)


def _select_versions():
    # Labels come along for output info; the weights themselves only when a runner loads.
    return select(model_versions, model_weights.c.labels).outerjoin(
        model_weights, model_weights.c.version_pk == model_versions.c.id
    )


def create_version(
    conn: Connection,
    model_pk: int,
    version_id: str,
    *,
    status_code: int,
    description: str = "",
) -> ModelVersionRecord:
    at = now()
    pk = insert_row(
        conn,
        model_versions,
        model_pk=model_pk,
        version_id=version_id,
        description=description,
        status_code=status_code,
        created_at=at,
    )
    conn.execute(update(models).where(models.c.id == model_pk).values(modified_at=at))
    return ModelVersionRecord(pk, model_pk, version_id, description, status_code, at)


def get_version(conn: Connection, model_pk: int, version_id: str) -> ModelVersionRecord | None:
    query = _select_versions().where(
        model_versions.c.model_pk == model_pk, model_versions.c.version_id == version_id
    )
    return one(conn, query, _version)


def latest_version(conn: Connection, model_pk: int) -> ModelVersionRecord | None:
    return one(conn, newest_first(_versions_of(model_pk), model_versions, limit=1), _version)


def list_versions(
    conn: Connection, model_pk: int, *, offset: int = 0, limit: int = 128
) -> list[ModelVersionRecord]:
    return every(
        conn, newest_first(_versions_of(model_pk), model_versions, offset, limit), _version
    )


def count_versions(conn: Connection, model_pk: int) -> int:
    return count_rows(conn, model_versions, model_versions.c.model_pk == model_pk)


# --- weights -------------------------------------------------------------------------------


def store_weights(
    conn: Connection,
    version_pk: int,
    *,
    weights: bytes,
    labels: list[tuple[str, str]],
    preprocessing: str,
    format: str = "onnx",
) -> None:
    conn.execute(
        insert(model_weights).values(
            version_pk=version_pk,
            format=format,
            weights=weights,
            sha256=hashlib.sha256(weights).hexdigest(),
            labels=json.dumps([list(pair) for pair in labels]),
            preprocessing=preprocessing,
        )
    )


def load_weights(conn: Connection, version_pk: int) -> WeightsRecord | None:
    query = select(model_weights).where(model_weights.c.version_pk == version_pk)
    return one(conn, query, _weights)
