"""The web portal, driven in headless Chromium against a real `scopegate serve`.

Each flow is checked on the page (content, not just status) and, where it yields a secret,
with the official client: the secret copied from the page must work, or stop working.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
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
    log_in,
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
    page.goto(f"{base}/portal/signup")
    snap(page, "00-signup-form")
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


def test_organizations_page_lists_the_users_organizations(page, base, portal_server):
    user_id = new_id("p")
    pat = sign_up(page, base, user_id)
    page.goto(f"{base}/portal/organizations")
    assert page.inner_text(".empty") == "You do not belong to any organization."
    org_id = new_id("org")
    reply = requests.post(
        f"{base}/scopegate/v1/organizations",
        json={"id": org_id, "name": "Acme Research"},
        headers={"authorization": f"Key {pat}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    page.reload()
    listed = row(page, "orgs-table", org_id)
    assert "Acme Research" in listed.inner_text()
    assert listed.locator(".role").inner_text() == "admin"
    snap(page, "18-organizations")


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


def my_scopes(stub, secret: str, user_id: str = "", app_id: str = ""):
    return stub.MyScopes(
        service_pb2.MyScopesRequest(user_app_id=ids(user_id, app_id)), metadata=auth(secret)
    )


def test_app_create_visibility_keys_and_delete(page, base, stub):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.goto(f"{base}/portal/apps")
    assert page.inner_text(".empty") == "No apps yet."
    page.get_by_role("link", name="Create app").click()
    page.get_by_label("App id").fill("photos")
    page.get_by_label("Description").fill("holiday pictures")
    snap(page, "09-app-create-form")
    page.get_by_role("button", name="Create app").click()
    assert page.get_by_role("heading", name="App “photos” created").is_visible()
    snap(page, "10-app-default-key")
    default_key = copy_secret(page)
    assert default_key.startswith("sgk_")
    scopes = my_scopes(stub, default_key)
    assert code_of(scopes) == codes.SUCCESS and scopes.app.id == "photos"

    page.click("#continue")
    assert page.url.endswith("/portal/apps/photos")
    assert page.inner_text("#current-visibility") == "Private"
    assert row(page, "app-key-table", "Default API key for photos").count() == 1

    # Visibility: PUBLIC through PatchApps.
    page.get_by_label("Who can see this app").select_option("50")
    page.get_by_role("button", name="Save visibility").click()
    assert page.inner_text(".notice") == "The app's visibility was saved."
    assert page.inner_text("#current-visibility") == "Public"
    snap(page, "11-app-settings")

    # App settings -> API keys: create with a dependent scope, copy, use.
    page.get_by_role("link", name="Create API Key").click()
    assert page.get_by_role("heading", name="Create API key for photos").is_visible()
    tick(page, "Inputs_Add")
    assert ticked(page, "Inputs_Get")
    page.get_by_label("Short description").fill("uploader")
    page.get_by_role("button", name="Confirm").click()
    app_key = copy_secret(page)
    assert app_key.startswith("sgk_")
    scopes = my_scopes(stub, app_key)
    assert code_of(scopes) == codes.SUCCESS
    assert scopes.app.id == "photos" and set(scopes.scopes) == {"Inputs_Add", "Inputs_Get"}

    # Edit its description and scopes.
    page.click("#continue")
    row(page, "app-key-table", "uploader").get_by_role("link", name="Edit").click()
    page.get_by_label("Short description").fill("uploader and reader")
    tick(page, "Concepts_Get")
    page.get_by_role("button", name="Save").click()
    edited = row(page, "app-key-table", "uploader and reader")
    assert "Concepts_Get" in edited.locator(".scopes").inner_text()
    assert "Concepts_Get" in my_scopes(stub, app_key).scopes

    # Roll, keeping the old secret for an hour: both work for now.
    edited.get_by_role("link", name="Roll").click()
    page.get_by_label("The current secret").select_option("3600")
    page.get_by_role("button", name="Roll").click()
    rolled = copy_secret(page)
    assert code_of(my_scopes(stub, rolled)) == codes.SUCCESS
    assert code_of(my_scopes(stub, app_key)) == codes.SUCCESS

    # Delete it: both secrets stop.
    page.click("#continue")
    row(page, "app-key-table", "uploader and reader").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete API key").click()
    assert page.inner_text(".notice").startswith("The key was deleted.")
    assert code_of(my_scopes(stub, rolled)) == codes.CONN_KEY_INVALID
    assert code_of(my_scopes(stub, app_key)) == codes.CONN_KEY_INVALID

    # Delete the app, after confirming: its default key stops too.
    page.get_by_role("link", name="Delete app").click()
    assert "Delete the app “photos”?" in page.inner_text("main")
    snap(page, "12-app-delete-confirm")
    page.get_by_role("button", name="Delete app").click()
    assert page.inner_text(".notice") == "The app and its API keys were deleted."
    assert page.locator("#apps-table").count() == 0
    assert code_of(my_scopes(stub, default_key)) == codes.CONN_KEY_INVALID


def test_collaborators_and_shared_with_me(page, other_page, base, stub):
    owner, guest = new_id("o"), new_id("g")
    sign_up(page, base, owner)
    guest_pat = sign_up(other_page, base, guest)
    page.goto(f"{base}/portal/apps/new")
    page.get_by_label("App id").fill("shared-app")
    page.get_by_role("button", name="Create app").click()
    page.click("#continue")

    def get_app():
        return stub.GetApp(
            service_pb2.GetAppRequest(user_app_id=ids(owner, "shared-app")),
            metadata=auth(guest_pat),
        )

    assert code_of(get_app()) == codes.CONN_DOES_NOT_EXIST

    # A mistake shows the handler's message and keeps what was typed.
    page.get_by_role("link", name="Add collaborator").click()
    page.get_by_label("Their email").fill("nobody-here@example.com")
    tick(page, "Apps_Get")
    page.get_by_role("button", name="Add collaborator").click()
    assert "they must sign up first" in page.inner_text("#form-error")
    assert page.get_by_label("Their email").input_value() == "nobody-here@example.com"
    assert ticked(page, "Apps_Get")

    page.get_by_label("Their email").fill(f"{guest}@example.com")
    tick(page, "Workflows_Get")  # GetApp needs both
    snap(page, "13-collaborator-add")
    page.get_by_role("button", name="Add collaborator").click()
    assert page.inner_text(".notice") == "The collaborator was added."
    added = row(page, "collaborator-table", guest)
    assert added.locator(".scopes").inner_text() == "Apps_Get, Workflows_Get"
    assert code_of(get_app()) == codes.SUCCESS

    other_page.goto(f"{base}/portal/shared")
    shared = row(other_page, "shared-table", "shared-app")
    assert owner in shared.inner_text() and "Apps_Get, Workflows_Get" in shared.inner_text()
    snap(other_page, "14-shared-with-me")

    added.get_by_role("link", name="Edit").click()
    assert ticked(page, "Apps_Get")
    tick(page, "Collaborators_Get")
    page.get_by_role("button", name="Save").click()
    assert page.inner_text(".notice") == "The collaborator's scopes were saved."
    scopes = row(page, "collaborator-table", guest).locator(".scopes").inner_text()
    assert scopes == "Apps_Get, Collaborators_Get, Workflows_Get"

    row(page, "collaborator-table", guest).get_by_role("link", name="Remove").click()
    page.get_by_role("button", name="Remove collaborator").click()
    assert page.inner_text(".notice") == "The collaborator was removed."
    assert page.locator("#collaborator-table").count() == 0
    assert code_of(get_app()) == codes.CONN_DOES_NOT_EXIST
    other_page.goto(f"{base}/portal/shared")
    assert other_page.inner_text(".empty") == "Nothing is shared with you yet."


def test_audit_page_lists_the_users_credential_events(page, base):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.goto(f"{base}/portal/security/keys/new")
    page.get_by_label("Short description").fill("short-lived")
    tick(page, "Inputs_Get")
    page.get_by_role("button", name="Confirm").click()
    page.click("#continue")
    row(page, "pat-table", "short-lived").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete Personal Access Token").click()
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, f"{user_id}@example.com")
    page.goto(f"{base}/portal/audit")
    actions = page.locator("#audit-table .action").all_inner_texts()
    # Newest first.
    assert actions[:6] == [
        "login",
        "logout",
        "key.delete",
        "key.create",
        "login",
        "key.create",
    ]
    assert "user.create" in actions
    snap(page, "15-audit")


def test_a_post_without_csrf_token_or_from_another_origin_is_refused(page, base):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.goto(f"{base}/portal/security/keys/new")
    token = page.input_value("input[name=csrf_token]")
    url = f"{base}/portal/security/keys/new"
    form = {"description": "forged", "scopes": "All"}

    no_token = page.request.post(url, form=form)  # the session cookie goes along
    assert no_token.status == 403
    assert "could not be verified" in no_token.text()
    wrong = page.request.post(url, form={**form, "csrf_token": token[:-2] + "xx"})
    assert wrong.status == 403
    cross_site = page.request.post(
        url, form={**form, "csrf_token": token}, headers={"origin": "http://evil.example"}
    )
    assert cross_site.status == 403
    good = page.request.post(url, form={"description": "genuine", "csrf_token": token})
    assert good.status == 200 and "sgp_" in good.text()

    page.goto(f"{base}/portal/security")
    assert row(page, "pat-table", "forged").count() == 0
    assert row(page, "pat-table", "genuine").count() == 1
    # The login form is protected too, with a pre-session cookie.
    login = page.request.post(f"{base}/portal/login", form={"email": "x@example.com"})
    assert login.status == 403


def test_wrong_passwords_are_throttled_like_the_api(page, base):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.get_by_role("button", name="Log out").click()
    email = f"{user_id}@example.com"
    for _ in range(5):
        log_in(page, base, email, "wrong-Password-1")
        assert page.inner_text("#form-error") == "Invalid email or password"
    log_in(page, base, email)  # even the right password, until the window passes
    error = page.inner_text("#form-error")
    assert error.startswith("Too many failed logins: Too many failed login attempts; try again in")
    assert page.locator("#signed-in-as").count() == 0
    snap(page, "16-login-throttled")


def test_handler_errors_are_readable_and_forms_keep_what_was_typed(page, base):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.goto(f"{base}/portal/apps/new")
    page.get_by_label("App id").fill("not a valid id!")
    page.get_by_label("Description").fill("kept")
    page.get_by_role("button", name="Create app").click()
    assert "app id 'not a valid id!' is not valid" in page.inner_text("#form-error")
    assert page.get_by_label("App id").input_value() == "not a valid id!"
    assert page.get_by_label("Description").input_value() == "kept"
    snap(page, "17-form-error")

    page.goto(f"{base}/portal/security/keys/0123456789abcdef0123456789abcdef/edit")
    assert page.inner_text("#page-error") == "Resource does not exist: No such key."
    assert page.goto(f"{base}/portal/apps/no-such-app").status == 404

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{base}/portal/signup")
    page.get_by_label("Email").fill(f"{user_id}@example.com")
    page.get_by_label("User id").fill(new_id("p"))
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    assert "must be at least 8 characters long" in page.inner_text("#form-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    assert "already taken" in page.inner_text("#form-error")
    assert page.get_by_label("Email").input_value() == f"{user_id}@example.com"


@pytest.mark.parametrize("path", ["/security", "/security/keys/new", "/apps/narrow", "/audit"])
def test_pages_are_readable_on_a_narrow_screen(browser, base, path):
    context = _context(browser, width=375)
    page = context.new_page()
    try:
        user_id = new_id("n")
        sign_up(page, base, user_id)
        page.goto(f"{base}/portal/apps/new")
        page.get_by_label("App id").fill("narrow")
        page.get_by_role("button", name="Create app").click()
        page.goto(f"{base}/portal{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 375px"
        snap(page, "narrow" + path.replace("/", "-"))
    finally:
        context.close()
