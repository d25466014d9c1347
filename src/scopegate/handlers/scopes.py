"""MyScopes: what the calling credential may do."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.context import RequestContext
from scopegate.handlers import Handler


def my_scopes(ctx: RequestContext, request):
    principal = ctx.principal
    response = ctx.spec.output_type(
        scopes=sorted(principal.scopes), endpoints=sorted(principal.endpoints)
    )
    if principal.app is not None:
        response.app.CopyFrom(
            resources_pb2.App(id=principal.app.app_id, user_id=principal.app.user_id)
        )
    return response


HANDLERS = {"MyScopes": Handler(my_scopes, blocking=False)}
