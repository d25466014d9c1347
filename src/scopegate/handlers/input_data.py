"""What inputs handlers share: records to messages, metadata actions and concept labels."""

from __future__ import annotations

import copy

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2
from sqlalchemy import Connection

from scopegate.contract.status import C
from scopegate.handlers.concepts import validate_concept_id, validate_concept_name
from scopegate.handlers.convert import timestamp
from scopegate.media.images import MIME_BY_FORMAT
from scopegate.store import concepts
from scopegate.store.concepts import ConceptValue
from scopegate.store.inputs import InputRecord
from scopegate.store.records import AppRecord

FORMAT_BY_MIME = {mime: fmt for fmt, mime in MIME_BY_FORMAT.items()}

# What each input status says, as the real service words it.
DESCRIPTIONS = {
    C.INPUT_DOWNLOAD_SUCCESS: "Download complete",
    C.INPUT_DOWNLOAD_PENDING: "Download pending",
    C.INPUT_DOWNLOAD_FAILED: "Download failed",
    C.INPUT_DOWNLOAD_IN_PROGRESS: "Download in progress",
}


def input_status(code: int, details: str = "") -> status_pb2.Status:
    status = status_pb2.Status(code=code, details=details)
    status.description = DESCRIPTIONS.get(code) or C.StatusCode.Name(code)
    return status


def input_message(
    record: InputRecord, app: AppRecord, *, status_code: int | None = None
) -> resources_pb2.Input:
    """An input as the API shows it: never the image bytes (lists would be huge), but the
    URL it came from and the decoded image's size and format once known."""
    message = resources_pb2.Input(
        id=record.input_id,
        created_at=timestamp(record.created_at),
        modified_at=timestamp(record.modified_at),
    )
    code = record.status_code if status_code is None else status_code
    message.status.CopyFrom(
        input_status(code, record.status_details if status_code is None else "")
    )
    image = message.data.image
    image.url = record.url
    if record.width and status_code is None:
        image.image_info.width = record.width
        image.image_info.height = record.height
        image.image_info.format = FORMAT_BY_MIME.get(record.mime, "")
        image.image_info.color_mode = record.color_mode
    for label in record.concepts:
        message.data.concepts.add(
            id=label.id,
            name=label.name,
            value=label.value,
            app_id=app.app_id,
            user_id=app.user_id,
        )
    if record.metadata:
        message.data.metadata.update(record.metadata)
    return message


def merge_metadata(base: dict, change: dict) -> dict:
    """Deep merge: objects merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_metadata(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def remove_metadata(base: dict, change: dict) -> dict:
    """Remove the keys named in `change`; a nested object removes keys one level down."""
    kept = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and value and isinstance(kept.get(key), dict):
            kept[key] = remove_metadata(kept[key], value)
        else:
            kept.pop(key, None)
    return kept


def patched_metadata(action: str, base: dict, change: dict) -> dict:
    if action == "merge":
        return merge_metadata(base, change)
    if action == "remove":
        return remove_metadata(base, change)
    return change


def validate_labels(message_concepts) -> list[ConceptValue]:
    """The concepts an input is given (the last of each id); value is 1 (present) or 0."""
    labels: dict[str, ConceptValue] = {}
    for concept in message_concepts:
        validate_concept_id(concept.id)
        validate_concept_name(concept.id, concept.name)
        if concept.value not in (0.0, 1.0):
            raise ValueError(
                f"Concept '{concept.id}' has value {concept.value}: use 1 (present) or 0 (absent)."
            )
        labels[concept.id] = ConceptValue(concept.id, concept.name, concept.value)
    return list(labels.values())


def resolve_labels(conn: Connection, app_pk: int, labels: list[ConceptValue]) -> dict[int, float]:
    """Concept pk → value; concepts the app does not have yet are created, as Clarifai does
    (named as given, else by their id)."""
    known = concepts.get_many(conn, app_pk, [label.id for label in labels])
    resolved: dict[int, float] = {}
    for label in labels:
        record = known.get(label.id)
        pk = (
            record.pk
            if record
            else concepts.add(conn, app_pk, label.id, name=label.name or label.id)
        )
        resolved[pk] = label.value
    return resolved
