"""The web portal, driven in headless Chromium against a real `scopegate serve`.

Each flow is checked on the page (content, not just status) and, where it yields a secret,
with the official client: the secret copied from the page must work, or stop working.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.conftest import make_stub, new_id
from tests.portal_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    auth,
    copy_secret,
    ids,
    row,
    sign_up,
    snap,
    tick,
    ticked,
)
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """A server of the portal tests' own: login throttling counts per process."""
    process = ServerProcess(data_dir=tmp_path_factory.mktemp("portal"), database_url=None)
    process.start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def base(portal_server) -> str:
    return portal_server.http_url


@pytest.fixture(scope="module")
def stub(portal_server):
    return make_stub(portal_server, "grpc")


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: `python3 tools/dev.py test` installs it as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _context(browser, width: int = 1280):
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def page(browser):
    context = _context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def other_page(browser):
    """A second person, in a browser context (cookies) of their own."""
    context = _context(browser)
    yield context.new_page()
    context.close()


def code_of(response) -> int:
    return response.status.code


def test_sign_up_shows_the_default_pat_once_and_it_works(page, base, stub):
    user_id = new_id("p")
    pat = sign_up(page, base, user_id)
    assert page.get_by_role("heading", name="Your account is ready").is_visible()
    assert "shown only once" in page.inner_text(".warning")
    assert page.inner_text("#signed-in-as") == user_id
    snap(page, "01-signup-default-pat")
    assert copy_secret(page) == pat
    reply = stub.ListApps(service_pb2.ListAppsRequest(user_app_id=ids()), metadata=auth(pat))
    assert code_of(reply) == codes.SUCCESS

    page.click("#continue")
    assert page.url.endswith("/portal/security")
    default = row(page, "pat-table", "Default PAT")
    assert default.count() == 1
    assert default.locator(".masked").inner_text() == f"sgp_…{pat[-4:]}"
    assert default.locator(".scopes").inner_text() == "All"
    assert default.locator(".expires").inner_text() == "never"
    assert pat not in page.content()  # the list never shows a secret again
    snap(page, "02-security")


def test_log_out_then_log_in_with_the_keyboard(page, base):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.get_by_role("button", name="Log out").click()
    assert page.url.endswith("/portal/login?notice=signed-out")
    assert page.inner_text(".notice") == "You are signed out."
    page.goto(f"{base}/portal/security")  # signed out: sent to the login page
    assert "/portal/login" in page.url
    snap(page, "03-login")

    page.get_by_label("Password").fill("not-the-password-1")
    page.get_by_label("Email").fill(f"{user_id}@example.com")
    page.get_by_role("button", name="Log in").click()
    assert page.inner_text("#form-error") == "Invalid email or password"
    assert page.get_by_label("Email").input_value() == f"{user_id}@example.com"

    # Keyboard only: type, Tab to the password, Enter submits; focus is visible.
    page.get_by_label("Email").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/security")  # back where the login page was asked from
    assert page.inner_text("#signed-in-as") == user_id


def test_pat_create_edit_roll_delete(page, base, stub):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.goto(f"{base}/portal/security")
    page.get_by_role("link", name="Create Personal Access Token").click()
    assert not ticked(page, "Apps_Get")
    tick(page, "Apps_Delete")
    # Dependent scopes are ticked and shown as needed.
    assert ticked(page, "Apps_Add") and ticked(page, "Apps_Get")
    assert page.inner_text("[data-needed-for='Apps_Get']") == "needed by Apps_Delete"
    assert "Apps_Add, Apps_Get" in page.inner_text("#scope-summary")
    tick(page, "Workflows_Get")
    page.get_by_label("Short description").fill("ci uploads")
    snap(page, "04-pat-create-form")
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_role("heading", name="New Personal Access Token created").is_visible()
    assert page.inner_text("#secret-scopes") == "Apps_Add, Apps_Delete, Apps_Get, Workflows_Get"
    snap(page, "05-pat-secret")
    secret = copy_secret(page)

    listed = stub.ListApps(service_pb2.ListAppsRequest(user_app_id=ids()), metadata=auth(secret))
    assert code_of(listed) == codes.SUCCESS
    keys = stub.ListKeys(service_pb2.ListKeysRequest(user_app_id=ids()), metadata=auth(secret))
    assert code_of(keys) == codes.CONN_INSUFFICIENT_SCOPES  # Keys_Get was not granted

    page.click("#continue")
    created = row(page, "pat-table", "ci uploads")
    assert created.locator(".masked").inner_text() == f"sgp_…{secret[-4:]}"
    assert "Apps_Delete" in created.locator(".scopes").inner_text()

    # Edit: description, one more scope, an expiry date.
    created.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Short description").input_value() == "ci uploads"
    assert ticked(page, "Apps_Delete") and not ticked(page, "Keys_Get")
    page.get_by_label("Short description").fill("ci uploads v2")
    tick(page, "Keys_Get")
    page.get_by_label("Expires after").fill("2099-12-31")
    snap(page, "06-pat-edit-form")
    page.get_by_role("button", name="Save").click()
    assert page.inner_text(".notice") == "The key was saved."
    edited = row(page, "pat-table", "ci uploads v2")
    assert "Keys_Get" in edited.locator(".scopes").inner_text()
    assert edited.locator(".expires").inner_text() == "2099-12-31 23:59 UTC"
    keys = stub.ListKeys(service_pb2.ListKeysRequest(user_app_id=ids()), metadata=auth(secret))
    assert code_of(keys) == codes.SUCCESS

    # Roll with no grace: the old secret stops at once, the new one works.
    edited.get_by_role("link", name="Roll").click()
    snap(page, "07-pat-roll")
    page.get_by_label("The current secret").select_option("0")
    page.get_by_role("button", name="Roll").click()
    assert page.get_by_role("heading", name="Personal Access Token rolled").is_visible()
    rolled = copy_secret(page)
    assert rolled != secret
    old = stub.ListApps(service_pb2.ListAppsRequest(user_app_id=ids()), metadata=auth(secret))
    assert code_of(old) == codes.CONN_KEY_INVALID
    new = stub.ListApps(service_pb2.ListAppsRequest(user_app_id=ids()), metadata=auth(rolled))
    assert code_of(new) == codes.SUCCESS

    # Delete, after a confirmation page.
    page.click("#continue")
    row(page, "pat-table", "ci uploads v2").get_by_role("link", name="Delete").click()
    assert "Delete the Personal Access Token “ci uploads v2”?" in page.inner_text("main")
    snap(page, "08-pat-delete-confirm")
    page.get_by_role("button", name="Delete Personal Access Token").click()
    assert page.inner_text(".notice").startswith("The key was deleted.")
    assert row(page, "pat-table", "ci uploads v2").count() == 0
    gone = stub.ListApps(service_pb2.ListAppsRequest(user_app_id=ids()), metadata=auth(rolled))
    assert code_of(gone) == codes.CONN_KEY_INVALID
