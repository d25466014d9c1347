"""Trailing-slash redirects that name a path, never a host.

Starlette answers `/portal` with a redirect to `/portal/` (and `/healthz/` to `/healthz`)
whose Location is an absolute URL built from the request's Host header: a forged Host
(host header injection, a poisoned cache in front) sends the browser to another site.
The same redirects are made here with a Location of path and query only.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send


def _route_path(scope: Scope) -> str:
    """The path within the app (what Starlette matches on): without a Mount's prefix."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path != root and path[len(root)] == "/":
        return path[len(root) :]
    return path


def _slash_twin(routes: list[BaseRoute], scope: Scope) -> str | None:
    """The relative URL of the path with its trailing slash added or removed, when a route
    takes that and none took the path itself; None otherwise."""
    if _route_path(scope) == "/":
        return None
    path = scope["path"]
    twin = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
    if all(route.matches(twin)[0] is Match.NONE for route in routes):
        return None
    # Without headers or server, URL gives path and query only (a leading `//` escaped).
    return str(URL(scope={**twin, "headers": [], "server": None}))


def relative_slash_redirects(app: Starlette) -> Starlette:
    """`app`, its router's own slash redirect replaced by the one above."""
    router = app.router
    router.redirect_slashes = False
    not_found = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        location = _slash_twin(router.routes, scope) if scope["type"] == "http" else None
        if location is None:
            await not_found(scope, receive, send)
            return
        await RedirectResponse(location, status_code=307)(scope, receive, send)

    router.default = default
    return app
