"""The ASGI application on the HTTP port."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from scopegate.contract.catalog import Catalog
from scopegate.contract.extensions import EXTENSION_METHODS
from scopegate.dispatch import Dispatcher
from scopegate.services.login import LoginService
from scopegate.transports.rest import docs
from scopegate.transports.rest.endpoint import ApiEndpoint
from scopegate.transports.rest.extensions import Extensions
from scopegate.transports.rest.gate import RefusalGate
from scopegate.transports.rest.router import Router
from scopegate.transports.rest.slash_redirects import relative_slash_redirects
from scopegate.transports.rest.usage import APP_PATH, KEY_PATH, UsageRoutes

HTTP_VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def to_portal(_request: Request) -> RedirectResponse:
    return RedirectResponse("/portal/", status_code=307)


def build_http_app(
    dispatcher: Dispatcher,
    catalog: Catalog,
    login_service: LoginService,
    portal: ASGIApp | None = None,
    operations: Sequence[BaseRoute] = (),
) -> RefusalGate:
    """The API's routes, and the web portal under /portal when given (the server builds
    it: the portal sits above the transports and uses their redirects). `operations`: the
    operator's routes the server adds (/readyz, /metrics)."""
    router = Router(catalog, EXTENSION_METHODS.values())
    api = ApiEndpoint(dispatcher, router)
    extensions = Extensions(dispatcher, login_service)
    usage = UsageRoutes(dispatcher)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *operations,
        # The contract as an OpenAPI document, and Swagger UI over it (docs.py).
        Route("/openapi.json", docs.openapi, methods=["GET"]),
        Route("/docs", docs.page, methods=["GET"]),
        Route("/docs/{name}", docs.asset, methods=["GET"]),
        Route("/v2/login", extensions.login, methods=["POST"]),
        Route("/v2/logout", extensions.logout, methods=["POST"]),
        Route(
            "/scopegate/v1/users/{user_id}/keys/{key_id}/roll",
            extensions.roll,
            methods=["POST"],
        ),
        Route(KEY_PATH, usage.key_usage, methods=["GET"]),
        Route(APP_PATH, usage.app_usage, methods=["GET"]),
        # What the gate leaves of /v2/: other verbs of login and logout (and verbs no API
        # route answers, refused by Starlette).
        Route("/v2/{path:path}", api.handle, methods=HTTP_VERBS),
    ]
    if portal is not None:
        # The web portal: server-rendered pages on the same dispatcher and handlers.
        routes += [Route("/", to_portal, methods=["GET", "HEAD"]), Mount("/portal", app=portal)]
    owned = [route.path for route in routes if "{" not in route.path]
    return RefusalGate(
        relative_slash_redirects(Starlette(routes=routes)), dispatcher, router, api, owned
    )
