"""One portal request: who is signed in, the form, calls through the dispatcher, rendering.

`signed_in` and `anonymous` wrap view functions `async (Page) -> Response`. They check the
CSRF token and Origin of every POST before the view runs, and turn a handler's `ApiError`
that escapes a view into a readable error page, never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from google.protobuf.message import Message
from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from scopegate.auth.principal import CredentialKind, Principal
from scopegate.contract.catalog import MethodSpec
from scopegate.contract.status import ApiError, C, http_status
from scopegate.dispatch import Call, Dispatcher
from scopegate.handlers import Handler
from scopegate.portal import session
from scopegate.portal.forms import FormTooLargeError, error_text, read_form
from scopegate.portal.session import BASE, CSRF_FIELD, CsrfSigner
from scopegate.services.login import LoginService

log = logging.getLogger("scopegate.portal")

# Fixed texts shown after a redirect (`?notice=...`): nothing a link can inject.
NOTICES = {
    "signed-out": "You are signed out.",
    "key-deleted": "The key was deleted. Its secret no longer works.",
    "key-saved": "The key was saved.",
    "app-deleted": "The app and its API keys were deleted.",
    "visibility-saved": "The app's visibility was saved.",
    "collaborator-added": "The collaborator was added.",
    "collaborator-saved": "The collaborator's scopes were saved.",
    "collaborator-removed": "The collaborator was removed.",
    "policy-saved": "The organization's token policy was saved.",
    "token-decided": "The decision was saved; the member's token follows it at once.",
}


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


@dataclass(slots=True)
class Portal:
    """What every portal request shares."""

    dispatcher: Dispatcher
    login: LoginService
    templates: Environment
    signer: CsrfSigner

    async def principal(self, token: str | None, peer: str) -> Principal | None:
        """The signed-in user for a session cookie, authenticated like any API call that
        sends `X-Clarifai-Session-Token` (a bad cookie counts against the address's
        failed-authentication throttle as a bad API credential does)."""
        if not token:
            return None
        try:
            principal = await self.dispatcher.authenticate(None, token, peer)
        except ApiError:
            return None
        return principal if principal.kind is CredentialKind.SESSION else None


@dataclass(slots=True)
class Page:
    portal: Portal
    request: Request
    principal: Principal | None
    binding: str  # what this page's CSRF tokens are bound to
    form: FormData = field(default_factory=FormData)

    @property
    def user_id(self) -> str:
        return self.principal.user_id if self.principal else ""

    @property
    def session_token(self) -> str | None:
        return self.request.cookies.get(session.SESSION_COOKIE) if self.principal else None

    @property
    def peer(self) -> str:
        return client_address(self.request)

    @property
    def csrf(self) -> str:
        return self.portal.signer.token(self.binding)

    async def call(
        self,
        method: str | MethodSpec,
        message: Message,
        *,
        handler: Handler | None = None,
        extras: dict | None = None,
    ) -> Message:
        """Dispatch a V2 method as the signed-in user, exactly as the API would; raise the
        handler's ApiError when it answers one."""
        catalog = self.portal.dispatcher.services.catalog
        spec = catalog.methods[method] if isinstance(method, str) else method  # or an extension
        call = Call(
            spec=spec,
            request=message,
            authorization=None,
            session_token=self.session_token,
            peer=self.peer,
            handler=handler,
            extras=extras if extras is not None else {},
            transport="portal",
        )
        response, error = await self.portal.dispatcher.dispatch(call)
        if error is not None:
            raise error
        status = response.status
        if status.code != C.SUCCESS:  # a few handlers answer a failure in-band
            raise ApiError(status.code, status.description, status.details)
        return response

    def render(self, template: str, *, status: int = 200, **context) -> HTMLResponse:
        notice = NOTICES.get(self.request.query_params.get("notice", ""))
        html = self.portal.templates.get_template(template).render(
            page=self, base=BASE, csrf_field=CSRF_FIELD, notice=notice, **context
        )
        return HTMLResponse(html, status_code=status)

    def render_form(self, template: str, error: ApiError | None, **context) -> HTMLResponse:
        """A form page: as first shown, or after a refused submit (`error`) re-rendered."""
        if error is None:
            return self.render(template, **context)
        return self.error(template, error, **context)

    def error(self, template: str, error: ApiError, **context) -> HTMLResponse:
        """Re-render a form with what the user typed and the handler's message."""
        return self.render(
            template,
            status=error.http_status or http_status(error.code),
            error=error_text(error),
            **context,
        )

    @staticmethod
    def redirect(path: str, notice: str | None = None) -> RedirectResponse:
        target = f"{BASE}{path}"
        if notice:
            target += ("&" if "?" in target else "?") + f"notice={notice}"
        return RedirectResponse(target, status_code=303)

    async def load_form(self) -> Response | None:
        """Read a POST's form; the refusal page when its origin or CSRF token is wrong."""
        try:
            self.form = await read_form(self.request)
        except FormTooLargeError as exc:
            return self.render("error.html", status=413, message=str(exc))
        token = str(self.form.get(CSRF_FIELD) or "")
        if not session.same_origin(self.request) or not self.portal.signer.valid(
            self.binding, token
        ):
            return self.render(
                "error.html",
                status=403,
                title="Form refused",
                message="This form could not be verified: it expired, or it was sent from "
                "another site. Go back, reload the page and try again.",
            )
        return None


View = Callable[[Page], Awaitable[Response]]


def _signed_out(error: ApiError) -> bool:
    """The session ended (logout elsewhere, expiry) between the page check and the call."""
    return error.code == C.CONN_KEY_INVALID or error.http_status == 401


def signed_in(view: View) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in users; others are sent to the login page and back."""

    async def endpoint(request: Request) -> Response:
        portal: Portal = request.app.state.portal
        token = request.cookies.get(session.SESSION_COOKIE)
        principal = await portal.principal(token, client_address(request))
        if principal is None:
            back = request.url.path if request.method == "GET" else f"{BASE}/"
            return RedirectResponse(f"{BASE}/login?next={quote(back)}", status_code=303)
        page = Page(portal, request, principal, binding=token)
        if request.method == "POST":
            refusal = await page.load_form()
            if refusal is not None:
                return refusal
        try:
            return await view(page)
        except ApiError as error:
            if _signed_out(error):
                return RedirectResponse(f"{BASE}/login", status_code=303)
            return page.render(
                "error.html",
                status=error.http_status or http_status(error.code),
                message=error_text(error),
            )

    endpoint.__name__ = view.__name__
    return endpoint


def anonymous(view: View) -> Callable[[Request], Awaitable[Response]]:
    """A page for visitors (log in, sign up): CSRF-bound to a pre-session cookie."""

    async def endpoint(request: Request) -> Response:
        portal: Portal = request.app.state.portal
        presession = request.cookies.get(session.PRESESSION_COOKIE)
        page = Page(portal, request, None, binding=presession or session.new_presession())

        def bound(response: Response) -> Response:
            """`response`, carrying a new pre-session cookie when the visitor had none."""
            if presession is None:
                session.set_cookie(
                    request,
                    response,
                    session.PRESESSION_COOKIE,
                    page.binding,
                    session.PRESESSION_SECONDS,
                )
            return response

        if request.method == "POST":
            refusal = await page.load_form()
            if refusal is not None:
                return bound(refusal)
        return bound(await view(page))

    endpoint.__name__ = view.__name__
    return endpoint
