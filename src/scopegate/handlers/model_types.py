"""GetModelType, ListModelTypes: the model types scopegate runs (runners/registry.py).

Types are not app data: every caller allowed on the target (any PAT on clarifai/main, as
the SDK names it) gets the same table."""

from __future__ import annotations

from scopegate.context import RequestContext
from scopegate.contract.status import does_not_exist
from scopegate.handlers import Handler
from scopegate.handlers.model_signatures import model_type_message
from scopegate.handlers.paging import offset_limit
from scopegate.runners.registry import MODEL_TYPES


def get_model_type(ctx: RequestContext, request):
    found = MODEL_TYPES.get(request.model_type_id)
    if found is None:
        known = ", ".join(f"'{t}'" for t in MODEL_TYPES)
        raise does_not_exist(f"No model type '{request.model_type_id}': scopegate runs {known}.")
    return ctx.spec.output_type(model_type=model_type_message(found))


def list_model_types(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    listed = list(MODEL_TYPES.values())[offset : offset + limit]
    return ctx.spec.output_type(model_types=[model_type_message(t) for t in listed])


# Answered from a table in memory: nothing blocks.
HANDLERS = {
    "GetModelType": Handler(get_model_type, blocking=False),
    "ListModelTypes": Handler(list_model_types, blocking=False),
}
