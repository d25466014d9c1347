"""The ASGI application on the HTTP port."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from scopegate.catalog import Catalog
from scopegate.dispatch import Dispatcher
from scopegate.transports.rest import RestEndpoint

HTTP_VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def build_http_app(dispatcher: Dispatcher, catalog: Catalog) -> Starlette:
    api = RestEndpoint(dispatcher, catalog)
    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v2/{path:path}", api.handle, methods=HTTP_VERBS),
        ]
    )
