"""The portal's routes, mounted by the HTTP app under `/portal`."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scopegate.dispatch import Dispatcher
from scopegate.portal import (
    views_apps,
    views_audit,
    views_auth,
    views_collaborators,
    views_keys,
    views_org_policy,
    views_orgs,
    views_usage,
)
from scopegate.portal.page import Portal
from scopegate.portal.render import build_templates
from scopegate.portal.session import CsrfSigner
from scopegate.services.login import LoginService
from scopegate.transports.rest.slash_redirects import relative_slash_redirects

STATIC_DIR = Path(__file__).parent / "static"
BOTH = ["GET", "POST"]

# Nothing but our own scripts, styles and forms; never framed (clickjacking).
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the headers above to every portal response; pages (which may show a secret
    once) are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = "/static/" in scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if not is_static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _key_routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/new", views_keys.create_key, methods=BOTH),
        Route(f"{prefix}/{{key_id}}/edit", views_keys.edit_key, methods=BOTH),
        Route(f"{prefix}/{{key_id}}/roll", views_keys.roll_key, methods=BOTH),
        Route(f"{prefix}/{{key_id}}/delete", views_keys.delete_key, methods=BOTH),
        Route(f"{prefix}/{{key_id}}/usage", views_usage.key_usage, methods=["GET"]),
    ]


def page_routes() -> list[Route]:
    """Every page and form of the portal (its static files aside)."""
    app_path = "/apps/{app_id}"
    collaborator_path = f"{app_path}/collaborators/{{collaborator_id}}"
    return [
        Route("/", views_auth.index, methods=["GET"]),
        Route("/login", views_auth.login, methods=BOTH),
        Route("/signup", views_auth.signup, methods=BOTH),
        Route("/logout", views_auth.logout, methods=["POST"]),
        Route("/security", views_keys.security, methods=["GET"]),
        *_key_routes("/security/keys"),
        Route("/apps", views_apps.apps, methods=["GET"]),
        Route("/apps/new", views_apps.create_app, methods=BOTH),
        Route(app_path, views_apps.app_settings, methods=["GET"]),
        Route(f"{app_path}/visibility", views_apps.set_visibility, methods=["POST"]),
        Route(f"{app_path}/delete", views_apps.delete_app, methods=BOTH),
        *_key_routes(f"{app_path}/keys"),
        Route(
            f"{app_path}/collaborators/new",
            views_collaborators.add_collaborator,
            methods=BOTH,
        ),
        Route(f"{collaborator_path}/edit", views_collaborators.edit_collaborator, methods=BOTH),
        Route(f"{collaborator_path}/remove", views_collaborators.remove_collaborator, methods=BOTH),
        Route("/shared", views_collaborators.shared_with_me, methods=["GET"]),
        Route("/organizations", views_orgs.organizations, methods=["GET"]),
        Route("/organizations/{org_id}/policy", views_org_policy.org_policy, methods=BOTH),
        Route(
            "/organizations/{org_id}/token-requests/{key_id}",
            views_org_policy.decide_token,
            methods=["POST"],
        ),
        Route("/audit", views_audit.audit, methods=["GET"]),
    ]


def build_portal(dispatcher: Dispatcher, login_service: LoginService) -> ASGIApp:
    """The portal as an ASGI app; mount it at `/portal`."""
    routes = [*page_routes(), Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
    portal = relative_slash_redirects(Starlette(routes=routes))
    portal.state.portal = Portal(
        dispatcher=dispatcher,
        login=login_service,
        templates=build_templates(),
        signer=CsrfSigner(dispatcher.services.hasher),
    )
    return SecurityHeaders(portal)
