"""PostInputs, GetInput, ListInputs, PatchInputs, DeleteInput, DeleteInputs.

Requests are all or nothing. A refused input is reported on that input (its own status
code and a reason) and nothing of the request is written; the request's status is then
INPUT_INVALID_REQUEST. Image bytes are decoded and stored at once; URLs are stored as
INPUT_DOWNLOAD_PENDING and fetched in the background (scopegate.media.downloads).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from scopegate.context import RequestContext
from scopegate.contract.status import ApiError, C, does_not_exist, invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.conflicts import retry_conflicts
from scopegate.handlers.convert import struct_dict
from scopegate.handlers.input_data import (
    input_message,
    input_status,
    patched_metadata,
    resolve_labels,
    validate_labels,
)
from scopegate.handlers.target_app import app_item, read_app_item, read_app_page, target_app
from scopegate.media import images as media
from scopegate.store import concepts, inputs
from scopegate.store.concepts import ConceptValue
from scopegate.store.inputs import ImageFacts

MAX_BATCH = 128  # Clarifai's limit on inputs per request
SHOWN_MISSING = 20  # ids a refused delete names
_INPUT_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class Refused(Exception):
    """One input of a request cannot be accepted: its status code and a reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class NewInput:
    input_id: str
    url: str
    image: bytes | None
    facts: ImageFacts | None
    metadata: dict
    labels: list[ConceptValue]


def _invalid_input(reason: str) -> Refused:
    return Refused(C.INPUT_INVALID_ARGUMENT, reason)


def _refuse_batch(ctx: RequestContext, request, refusals: dict[int, Refused]) -> ApiError:
    """The error answering a request with refused inputs: every input, in request order,
    with its own status, so a client can tell which ones to fix."""
    response = ctx.spec.output_type()
    for index, sent in enumerate(request.inputs):
        shown = response.inputs.add(id=sent.id)
        refusal = refusals.get(index)
        if refusal:
            shown.status.CopyFrom(input_status(refusal.code, refusal.reason))
        else:
            shown.status.CopyFrom(
                input_status(C.INPUT_INVALID_REQUEST, "Not written: another input was refused.")
            )
    count = len(refusals)
    return ApiError(
        C.INPUT_INVALID_REQUEST,
        "Invalid request",
        f"{count} of {len(request.inputs)} input{'s' if len(request.inputs) > 1 else ''} "
        f"refused (see each input's status); nothing was written.",
        response=response,
    )


def _new_input(ctx: RequestContext, sent) -> NewInput:
    input_id = sent.id or uuid.uuid4().hex
    if not _INPUT_ID.fullmatch(input_id):
        raise _invalid_input(
            f"Input id '{input_id}' is not valid: use 1 to 255 letters, digits, '_' or '-'."
        )
    image = sent.data.image
    if image.base64 and image.url:
        raise _invalid_input("Give data.image.base64 or data.image.url, not both.")
    limits = ctx.services.media
    data, facts, url = None, None, ""
    if image.base64:
        try:
            info = media.decode_image(
                image.base64, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels
            )
        except media.MediaError as error:
            raise Refused(error.code, error.reason) from None
        data, facts = image.base64, ImageFacts(info.width, info.height, info.mime, info.mode)
    elif image.url:
        url = image.url
        if urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).hostname:
            raise Refused(C.INPUT_INVALID_URL, f"'{url}' is not an http or https URL.")
    else:
        raise _invalid_input(
            "The input has no image: give data.image.base64 (bytes) or data.image.url."
        )
    try:
        labels = validate_labels(sent.data.concepts)
    except ApiError as error:
        raise _invalid_input(error.details) from None
    except ValueError as error:
        raise _invalid_input(str(error)) from None
    try:
        metadata = struct_dict(sent.data.metadata, "data.metadata")
    except ValueError as error:
        raise _invalid_input(str(error)) from None
    return NewInput(input_id, url, data, facts, metadata, labels)


def _store_new_inputs(ctx: RequestContext, request, accepted: dict[int, NewInput], seen: set[str]):
    """One transaction writing the accepted inputs: (response, downloads to schedule)."""
    refusals: dict[int, Refused] = {}
    response = ctx.spec.output_type()
    downloads: list[tuple[int, str]] = []
    with ctx.services.engine.begin() as conn:
        app = target_app(conn, ctx)
        taken = inputs.existing_ids(conn, app.pk, seen)
        for index, new in accepted.items():
            if new.input_id in taken:
                refusals[index] = Refused(
                    C.INPUT_DUPLICATE, f"Input id '{new.input_id}' already exists in this app."
                )
        if refusals:
            raise _refuse_batch(ctx, request, refusals)
        for new in accepted.values():
            pk = inputs.add(
                conn,
                app.pk,
                new.input_id,
                url=new.url,
                image=new.image,
                facts=new.facts,
                metadata=new.metadata,
                status_code=C.INPUT_DOWNLOAD_SUCCESS if new.image else C.INPUT_DOWNLOAD_PENDING,
            )
            inputs.set_labels(conn, pk, resolve_labels(conn, app.pk, new.labels))
            if new.url:
                downloads.append((pk, new.url))
            # Reported as the real service does: every new input is "Download pending"
            # here; GetInput and ListInputs show where each one got to.
            record = inputs.get_by_pk(conn, pk)
            response.inputs.append(input_message(record, app, status_code=C.INPUT_DOWNLOAD_PENDING))
    return response, downloads


def post_inputs(ctx: RequestContext, request):
    if not request.inputs:
        raise invalid_argument("Give at least one input in 'inputs'.")
    if len(request.inputs) > MAX_BATCH:
        raise invalid_argument(f"At most {MAX_BATCH} inputs per request; split the batch.")
    if request.input_id_conflict_resolution:
        raise invalid_argument("input_id_conflict_resolution is not supported: leave it unset.")
    accepted: dict[int, NewInput] = {}
    refusals: dict[int, Refused] = {}
    seen: set[str] = set()
    for index, sent in enumerate(request.inputs):
        try:
            new = _new_input(ctx, sent)
            if new.input_id in seen:
                raise Refused(C.INPUT_DUPLICATE, f"Input id '{new.input_id}' is given twice.")
            seen.add(new.input_id)
            accepted[index] = new
        except Refused as refusal:
            refusals[index] = refusal
    if refusals:
        raise _refuse_batch(ctx, request, refusals)
    response, downloads = retry_conflicts(lambda: _store_new_inputs(ctx, request, accepted, seen))
    for pk, url in downloads:  # after the commit, so a worker always finds the row
        ctx.services.schedule_download(pk, url)
    return response


def get_input(ctx: RequestContext, request):
    record, app = read_app_item(ctx, inputs.get, "Input", request.input_id)
    return ctx.spec.output_type(input=input_message(record, app))


def list_inputs(ctx: RequestContext, request):
    """Newest first; `ids` and `status.code` filter."""
    found, app = read_app_page(
        ctx,
        request,
        inputs.list_for_app,
        input_ids=list(request.ids),
        status_code=request.status.code or None,
    )
    return ctx.spec.output_type(inputs=[input_message(r, app) for r in found])


PATCH_ACTIONS = ("merge", "overwrite", "remove")


def patch_inputs(ctx: RequestContext, request):
    """merge: metadata deep-merged, concepts added or updated; overwrite: given metadata
    and given concepts replace the stored ones; remove: the named metadata keys and
    concept ids are removed. An input's image cannot be changed."""
    action = request.action or "merge"
    if action not in PATCH_ACTIONS:
        raise invalid_argument(f"Unsupported action '{action}': use {', '.join(PATCH_ACTIONS)}.")
    if not request.inputs:
        raise invalid_argument("Give at least one input in 'inputs'.")

    def write():
        response = ctx.spec.output_type()
        with ctx.services.engine.begin() as conn:
            app = target_app(conn, ctx)
            for patch in request.inputs:
                record = app_item(conn, app, inputs.get, "Input", patch.id)
                if patch.data.image.url or patch.data.image.base64:
                    raise invalid_argument("An input's image cannot be changed: post a new input.")
                if patch.data.HasField("metadata"):
                    try:
                        change = struct_dict(
                            patch.data.metadata, f"The metadata of input '{patch.id}'"
                        )
                    except ValueError as error:
                        raise invalid_argument(str(error)) from None
                    inputs.set_metadata(
                        conn, record.pk, patched_metadata(action, record.metadata, change)
                    )
                if patch.data.concepts:
                    _patch_labels(conn, app.pk, record.pk, action, patch.data.concepts)
                response.inputs.append(input_message(inputs.get_by_pk(conn, record.pk), app))
            return response

    return retry_conflicts(write)


def _patch_labels(conn, app_pk: int, input_pk: int, action: str, sent) -> None:
    try:
        labels = validate_labels(sent)
    except ValueError as error:
        raise invalid_argument(str(error)) from None
    current = inputs.label_map(conn, input_pk)
    if action == "remove":
        known = concepts.get_many(conn, app_pk, [label.id for label in labels])
        for record in known.values():
            current.pop(record.pk, None)
    elif action == "overwrite":
        current = resolve_labels(conn, app_pk, labels)
    else:
        current.update(resolve_labels(conn, app_pk, labels))
    inputs.set_labels(conn, input_pk, current)
    inputs.touch(conn, input_pk)


def _delete(ctx: RequestContext, input_ids: list[str]):
    if not input_ids:
        raise invalid_argument("Name the inputs to delete.")
    with ctx.services.engine.begin() as conn:
        app = target_app(conn, ctx)
        found = inputs.list_for_app(
            conn, app.pk, offset=0, limit=len(set(input_ids)), input_ids=input_ids
        )
        missing = sorted(set(input_ids) - {r.input_id for r in found})
        if missing:
            named = ", ".join(missing[:SHOWN_MISSING])
            if len(missing) > SHOWN_MISSING:
                named += f" and {len(missing) - SHOWN_MISSING} more"
            raise does_not_exist(f"Not in this app: {named}. Nothing was deleted.")
        inputs.delete_many(conn, [r.pk for r in found])
    return ctx.spec.output_type()


def delete_input(ctx: RequestContext, request):
    return _delete(ctx, [request.input_id] if request.input_id else [])


def delete_inputs(ctx: RequestContext, request):
    return _delete(ctx, list(request.ids))


HANDLERS = {
    "PostInputs": Handler(post_inputs),
    "GetInput": Handler(get_input),
    "ListInputs": Handler(list_inputs),
    "PatchInputs": Handler(patch_inputs),
    "DeleteInput": Handler(delete_input),
    "DeleteInputs": Handler(delete_inputs),
}
