"""`GET /openapi.json` and `GET /docs`: the contract as a document, and Swagger UI over it.

Swagger UI's files come from the `swagger-ui-bundle-v2` package and are served from here,
only the three the page loads (not the bundle's demo page, whose initializer names an
outside host); the page's own initializer is a script file, never inline, so the
portal's Content-Security-Policy holds on these pages too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from swagger_ui_bundle import swagger_ui_path

from scopegate.contract.openapi import openapi_json
from scopegate.contract.status import does_not_exist
from scopegate.transports.rest.errors import error_response

# The portal's policy (portal/app.py): nothing but this server's own scripts and styles.
HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>scopegate API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<noscript><p>This page needs JavaScript; the document itself is
<a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

# No validator badge (Swagger UI would fetch it from its own site), operations folded:
# the document has some 470 of them and 600 schemas.
_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    docExpansion: "none",
    defaultModelsExpandDepth: -1,
    filter: true,
  });
});
"""

_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


async def openapi(_request: Request) -> Response:
    return Response(openapi_json(), media_type="application/json")


async def page(_request: Request) -> Response:
    return Response(_PAGE, media_type="text/html", headers=HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "init.js":
        return Response(_INIT, media_type="text/javascript", headers=HEADERS)
    media_type = _ASSETS.get(name)
    if media_type is None:
        return error_response(does_not_exist(f"No file {name} here."))
    return FileResponse(str(swagger_ui_path / name), media_type=media_type, headers=HEADERS)
