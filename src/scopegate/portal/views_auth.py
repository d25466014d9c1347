"""Sign up, log in, log out: the same users, sessions and throttling as `POST /v2/login`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scopegate.contract.status import ApiError
from scopegate.portal import session
from scopegate.portal.forms import text
from scopegate.portal.page import Page, Portal, anonymous, client_address, signed_in
from scopegate.portal.session import BASE

HOME = "/security"
T = TypeVar("T")


def _next_path(raw: str) -> str:
    """Where to go after logging in: only a portal path, never another site."""
    if raw.startswith(f"{BASE}/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return f"{BASE}{HOME}"


async def index(request: Request) -> Response:
    portal: Portal = request.app.state.portal
    signed = await portal.principal(
        request.cookies.get(session.SESSION_COOKIE), client_address(request)
    )
    return RedirectResponse(f"{BASE}{HOME}" if signed else f"{BASE}/login", status_code=303)


async def _login_service(page: Page, method: Callable[..., T], *args: Any) -> T:
    """A login service method run as `POST /v2/login` runs it: in a thread, given the
    client's address and a new request id."""
    return await asyncio.to_thread(
        method, *args, page.peer, page.portal.dispatcher.new_request_id()
    )


def _signed_in_response(page: Page, token: str, target: str) -> Response:
    return _with_session(page, RedirectResponse(target, status_code=303), token)


def _with_session(page: Page, response: Response, token: str) -> Response:
    """`response`, carrying the new session's cookie."""
    session.set_cookie(
        page.request,
        response,
        session.SESSION_COOKIE,
        token,
        int(page.portal.login.session_seconds),
    )
    return response


@anonymous
async def login(page: Page) -> Response:
    next_path = _next_path(
        text(page.form, "next") if page.form else page.request.query_params.get("next", "")
    )
    if page.request.method == "GET":
        if await page.portal.principal(page.request.cookies.get(session.SESSION_COOKIE), page.peer):
            return RedirectResponse(next_path, status_code=303)
        return page.render("login.html", email="", next=next_path)
    email = text(page.form, "email", 320)
    password = str(page.form.get("password") or "")
    try:
        _user_id, token = await _login_service(page, page.portal.login.login, email, password)
    except ApiError as error:
        return page.error("login.html", error, email=email, next=next_path)
    return _signed_in_response(page, token, next_path)


@anonymous
async def signup(page: Page) -> Response:
    if page.request.method == "GET":
        return page.render("signup.html", email="", user_id="")
    email = text(page.form, "email", 320)
    user_id = text(page.form, "user_id", 64)
    password = str(page.form.get("password") or "")
    try:
        # There is no Clarifai sign-up method: the login service makes the account (as the
        # CLI's `users create` does), then the session, exactly as `POST /v2/login` would.
        login = page.portal.login
        pat = await _login_service(page, login.sign_up, user_id, email, password)
        _user_id, token = await _login_service(page, login.login, email, password)
    except ApiError as error:
        return page.error("signup.html", error, email=email, user_id=user_id)
    # The rest of this page (its header, the logout form's CSRF token) is the new session's.
    page.principal = await page.portal.principal(token, page.peer)
    page.binding = token
    response = page.render(
        "secret.html",
        title="Welcome to scopegate",
        heading="Your account is ready",
        intro=f"Signed in as {user_id}. This is your default Personal Access Token: "
        "it has every scope and does not expire.",
        secret=pat,
        scopes=["All"],
        continue_url=f"{BASE}{HOME}",
        continue_label="Continue to Security",
    )
    return _with_session(page, response, token)


@signed_in
async def logout(page: Page) -> Response:
    # The login service ends the session in this process's caches too.
    await _login_service(page, page.portal.login.logout, page.principal)
    response = Page.redirect("/login", "signed-out")
    session.clear_cookie(page.request, response, session.SESSION_COOKIE)
    return response
