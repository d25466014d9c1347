"""PostConcepts, GetConcept, ListConcepts, PatchConcepts, PostConceptsSearches.

Batches are all or nothing: one bad concept and nothing is written. Searches match names
case-insensitively through Python's casefold, so "café", "CAFÉ" and "Café" are one name
on SQLite and PostgreSQL alike; `*` in a searched name matches any run of characters.
"""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2
from sqlalchemy.exc import IntegrityError

from scopegate.context import RequestContext
from scopegate.contract.status import ApiError, C
from scopegate.handlers import Handler
from scopegate.handlers.convert import struct_dict, timestamp
from scopegate.handlers.target_app import app_item, read_app_item, read_app_page, target_app
from scopegate.store import concepts
from scopegate.store.concepts import ConceptRecord
from scopegate.store.records import AppRecord

MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
MAX_LANGUAGE_LENGTH = 16


def concept_message(record: ConceptRecord, app: AppRecord) -> resources_pb2.Concept:
    message = resources_pb2.Concept(
        id=record.concept_id,
        name=record.name,
        value=1.0,
        language=record.language,
        app_id=app.app_id,
        user_id=app.user_id,
        created_at=timestamp(record.created_at),
    )
    if record.metadata:
        message.metadata.update(record.metadata)
    return message


def concepts_invalid(details: str) -> ApiError:
    return ApiError(C.CONCEPTS_INVALID_REQUEST, "Invalid request", details)


def validate_concept_id(concept_id: str) -> str:
    """Concept ids are free text (Clarifai has ids such as "ai_l8TKp2h5"), but they name a
    REST path segment: no '/', no surrounding whitespace, at most 255 characters."""
    if not concept_id:
        raise concepts_invalid("Every concept needs an 'id'.")
    if concept_id != concept_id.strip() or "/" in concept_id or len(concept_id) > MAX_ID_LENGTH:
        raise concepts_invalid(
            f"Concept id '{concept_id}' is not valid: use at most {MAX_ID_LENGTH} characters, "
            "no '/' and no leading or trailing spaces."
        )
    return concept_id


def validate_concept_name(concept_id: str, name: str) -> str:
    """A name fits in at most 255 characters, also once case-folded for searching (folding
    can lengthen a name: "ß" folds to "ss")."""
    if len(name) > MAX_NAME_LENGTH or len(concepts.fold(name)) > MAX_NAME_LENGTH:
        raise concepts_invalid(
            f"The name of concept '{concept_id}' is too long: at most {MAX_NAME_LENGTH} "
            "characters (counted after case folding, which turns 'ß' into 'ss')."
        )
    return name


def validate_language(concept_id: str, language: str) -> str:
    if len(language) > MAX_LANGUAGE_LENGTH:
        raise concepts_invalid(
            f"The language of concept '{concept_id}' is not a language code "
            f"(at most {MAX_LANGUAGE_LENGTH} characters, such as 'en' or 'zh')."
        )
    return language


def _metadata(message) -> dict | None:
    if not message.HasField("metadata"):
        return None
    try:
        return struct_dict(message.metadata, f"The metadata of concept '{message.id}'")
    except ValueError as error:
        raise concepts_invalid(str(error)) from None


def _validate(concept) -> None:
    validate_concept_id(concept.id)
    validate_concept_name(concept.id, concept.name)
    validate_language(concept.id, concept.language)
    _metadata(concept)


def post_concepts(ctx: RequestContext, request):
    if not request.concepts:
        raise concepts_invalid("Give at least one concept in 'concepts'.")
    seen: set[str] = set()
    for concept in request.concepts:
        _validate(concept)
        if concept.id in seen:
            raise concepts_invalid(f"Concept id '{concept.id}' is a duplicate within the request.")
        seen.add(concept.id)
    response = ctx.spec.output_type()
    with ctx.services.engine.begin() as conn:
        app = target_app(conn, ctx)
        taken = concepts.get_many(conn, app.pk, list(seen))
        if taken:
            raise concepts_invalid(
                f"Concept id '{sorted(taken)[0]}' is a duplicate: it already exists in this app."
            )
        try:
            for concept in request.concepts:
                concepts.add(
                    conn,
                    app.pk,
                    concept.id,
                    name=concept.name or concept.id,
                    language=concept.language,
                    metadata=_metadata(concept),
                )
        except IntegrityError:  # a concurrent request created one of them first
            raise concepts_invalid("A concept id is a duplicate: it already exists.") from None
        created = concepts.get_many(conn, app.pk, list(seen))
        for concept in request.concepts:
            response.concepts.append(concept_message(created[concept.id], app))
    return response


def get_concept(ctx: RequestContext, request):
    record, app = read_app_item(ctx, concepts.get, "Concept", request.concept_id)
    return ctx.spec.output_type(concept=concept_message(record, app))


def list_concepts(ctx: RequestContext, request):
    found, app = read_app_page(ctx, request, concepts.list_for_app)
    return ctx.spec.output_type(concepts=[concept_message(c, app) for c in found])


def patch_concepts(ctx: RequestContext, request):
    """Overwrite: each given field replaces the stored one (an empty name keeps the name)."""
    if request.action not in ("", "overwrite"):
        raise concepts_invalid(f"Unsupported action '{request.action}': use 'overwrite'.")
    if not request.concepts:
        raise concepts_invalid("Give at least one concept in 'concepts'.")
    for patch in request.concepts:
        _validate(patch)
    response = ctx.spec.output_type()
    with ctx.services.engine.begin() as conn:
        app = target_app(conn, ctx)
        for patch in request.concepts:
            record = app_item(conn, app, concepts.get, "Concept", patch.id)
            metadata = _metadata(patch)
            concepts.set_fields(
                conn,
                record.pk,
                name=patch.name or record.name,
                language=patch.language or record.language,
                metadata=record.metadata if metadata is None else metadata,
            )
            response.concepts.append(concept_message(concepts.get(conn, app.pk, patch.id), app))
    return response


def like_pattern(name: str) -> str:
    """A LIKE pattern over folded names: `*` is the only wildcard, '%' and '_' are literal."""
    escaped = concepts.fold(name).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def post_concepts_searches(ctx: RequestContext, request):
    name = request.concept_query.name
    if not name:
        raise concepts_invalid("Give the name to search for in concept_query.name.")
    found, app = read_app_page(
        ctx, request.pagination, concepts.list_for_app, name_pattern=like_pattern(name)
    )
    return ctx.spec.output_type(concepts=[concept_message(c, app) for c in found])


HANDLERS = {
    "PostConcepts": Handler(post_concepts),
    "GetConcept": Handler(get_concept),
    "ListConcepts": Handler(list_concepts),
    "PatchConcepts": Handler(patch_concepts),
    "PostConceptsSearches": Handler(post_concepts_searches),
}
