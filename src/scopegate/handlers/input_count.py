"""GetInputCount: how many of an app's inputs are in each state, from their stored status."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.context import RequestContext
from scopegate.contract.status import C
from scopegate.handlers import Handler
from scopegate.handlers.target_app import target_app
from scopegate.store import inputs


def get_input_count(ctx: RequestContext, request):
    with ctx.services.engine.connect() as conn:
        by_status = inputs.count_by_status(conn, target_app(conn, ctx).pk)
    # Nothing is indexed here, so every reindex count stays 0.
    counts = resources_pb2.InputCount(
        processed=by_status.get(C.INPUT_DOWNLOAD_SUCCESS, 0),
        to_process=by_status.get(C.INPUT_DOWNLOAD_PENDING, 0),
        processing=by_status.get(C.INPUT_DOWNLOAD_IN_PROGRESS, 0),
        errors=by_status.get(C.INPUT_DOWNLOAD_FAILED, 0),
    )
    return ctx.spec.output_type(counts=counts)


HANDLERS = {"GetInputCount": Handler(get_input_count)}
