"""The web portal, driven in headless Chromium against a real `scopegate serve`.

Each flow is checked on the page (content, not just status) and, where it yields a secret,
with the official client: the secret the page's Copy button put on the clipboard must
work, or stop working. Every browser context checks, when it closes, that the page ran
without JavaScript errors, fetched nothing from anywhere but the server under test, and
never put a secret in a URL.

One server and two signed-up users (alice and bob) serve the whole module; tests that
need a fresh account (sign-up, logout, login throttling) make their own.
"""

from __future__ import annotations

import time

import requests
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.portal.app import page_routes
from tests.support.clients import new_id
from tests.support.portal import (
    NARROW,
    PAGE_ROUTES,
    PASSWORD,
    auth,
    copy_secret,
    focus_is_visible,
    focused,
    ids,
    log_in,
    page_route,
    row,
    sideways_scroll,
    sign_up,
    snap,
    tab_to,
    tick,
    ticked,
    untick,
)


def code_of(response) -> int:
    return response.status.code


def list_apps(stub, secret: str) -> int:
    reply = stub.ListApps(service_pb2.ListAppsRequest(user_app_id=ids()), metadata=auth(secret))
    return code_of(reply)


def my_scopes(stub, secret: str, user_id: str = "", app_id: str = ""):
    return stub.MyScopes(
        service_pb2.MyScopesRequest(user_app_id=ids(user_id, app_id)), metadata=auth(secret)
    )


def get_key(stub, pat: str, key_id: str):
    reply = stub.GetKey(
        service_pb2.GetKeyRequest(user_app_id=ids(), key_id=key_id), metadata=auth(pat)
    )
    assert code_of(reply) == codes.SUCCESS, reply.status
    return reply.key


def wait_for_last_use(page, table: str, description: str, seconds: float = 10.0) -> str:
    """Last use is written every few seconds: reload until the row shows it."""
    deadline = time.monotonic() + seconds
    while True:
        shown = row(page, table, description).locator(".last-used").inner_text()
        if shown != "never" or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)
        page.reload()


def test_sign_up_shows_the_default_pat_once_and_it_works(page, base, stub):
    reply = page.goto(f"{base}/")  # the server's root leads to the portal
    assert page.url == f"{base}/portal/login"
    csp = reply.all_headers()["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp

    user_id = new_id("p")
    page.goto(f"{base}/portal/signup")
    snap(page, "00-signup-form")
    pat = sign_up(page, base, user_id)
    assert page.get_by_role("heading", name="Your account is ready").is_visible()
    assert "shown only once" in page.inner_text(".warning")
    assert page.inner_text("#signed-in-as") == user_id
    snap(page, "01-signup-default-pat")
    assert copy_secret(page) == pat
    assert list_apps(stub, pat) == codes.SUCCESS

    # The session cookie: HttpOnly, SameSite, the portal's path only (Secure over HTTPS:
    # tests/test_tls.py), holding the same kind of session `POST /v2/login` gives.
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["sg_portal_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/portal"
    assert not session["secure"]  # plain HTTP here
    assert session["value"].startswith("sgs_")
    assert page.evaluate("document.cookie") == ""  # no script can read it
    me = requests.get(
        f"{base}/v2/users/me",
        headers={"x-clarifai-session-token": session["value"]},
        timeout=10,
    )
    assert me.json()["user"]["id"] == user_id

    page.click("#continue")
    assert page.url.endswith("/portal/security")
    default = row(page, "pat-table", "Default PAT")
    assert default.count() == 1
    assert default.locator(".masked").inner_text() == f"sgp_…{pat[-4:]}"
    assert default.locator(".scopes").inner_text() == "All"
    assert default.locator(".expires").inner_text() == "never"
    assert pat not in page.content()  # the list never shows a secret again
    snap(page, "02-security")


def test_log_in_and_out_with_the_keyboard(page, base):
    user_id = new_id("p")
    sign_up(page, base, user_id)
    page.get_by_role("button", name="Log out").click()
    assert page.url.endswith("/portal/login?notice=signed-out")
    assert page.inner_text(".notice") == "You are signed out."
    assert "sg_portal_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{base}/portal/security")  # signed out: sent to the login page
    assert "/portal/login" in page.url
    snap(page, "03-login")

    # Keyboard only. The first Tab reaches the skip link, which shows itself.
    page.keyboard.press("Tab")
    assert focused(page, "a.skip") and page.locator("a.skip").bounding_box()["x"] >= 0
    tab_to(page, "#email")
    assert focus_is_visible(page)
    page.keyboard.type(f"{user_id}@example.com")
    page.keyboard.press("Tab")
    assert focused(page, "#password") and focus_is_visible(page)
    page.keyboard.type("not-the-password-1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#form-error")
    assert page.inner_text("#form-error") == "Invalid email or password"
    assert page.get_by_label("Email").input_value() == f"{user_id}@example.com"
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/security")  # back where the login page was asked from
    assert page.inner_text("#signed-in-as") == user_id

    # Logging in and out, and the failure, are the user's credential events.
    page.goto(f"{base}/portal/audit")
    actions = page.locator("#audit-table .action").all_inner_texts()
    assert actions[:4] == ["login", "login.failed", "logout", "login"]


def test_create_a_pat_with_the_keyboard_only(base, stub, alice):
    page = alice.page
    page.goto(f"{base}/portal/security")
    tab_to(page, "#create-pat")
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/security/keys/new")

    tab_to(page, "#description")
    page.keyboard.type("typed, not clicked")
    tab_to(page, "#expires_on")
    page.keyboard.type("12312099")  # month, day, year in the en-US date field
    assert page.input_value("#expires_on") == "2099-12-31"
    tab_to(page, "#scope-Apps_Delete")
    assert focus_is_visible(page)
    page.keyboard.press("Space")
    assert ticked(page, "Apps_Delete") and ticked(page, "Apps_Get")  # ticked for it
    tab_to(page, "#scope-Workflows_Get")  # ListApps needs it too
    page.keyboard.press("Space")
    tab_to(page, "#confirm")
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#new-secret")
    assert page.inner_text("#secret-scopes") == "Apps_Add, Apps_Delete, Apps_Get, Workflows_Get"
    assert page.inner_text("#secret-expires") == "2099-12-31 23:59 UTC"
    secret = copy_secret(page, keyboard=True)
    assert list_apps(stub, secret) == codes.SUCCESS


def test_pat_create_edit_roll_delete(base, stub, alice):
    page = alice.page
    page.goto(f"{base}/portal/security")
    page.get_by_role("link", name="Create Personal Access Token").click()
    assert not ticked(page, "Apps_Get")
    # Ticking a scope ticks, marks and names the scopes it depends on...
    tick(page, "Apps_Delete")
    assert ticked(page, "Apps_Add") and ticked(page, "Apps_Get")
    assert page.inner_text("[data-needed-for='Apps_Get']") == "needed by Apps_Delete"
    assert "Apps_Add, Apps_Get" in page.inner_text("#scope-summary")
    # ... and unticking it lets them go again.
    untick(page, "Apps_Delete")
    assert not ticked(page, "Apps_Add") and not ticked(page, "Apps_Get")
    assert not page.is_visible("[data-needed-for='Apps_Get']")
    tick(page, "Apps_Delete")
    tick(page, "Workflows_Get")
    page.get_by_label("Short description").fill("ci uploads")
    page.get_by_label("Expires after").fill("2098-06-30")
    snap(page, "04-pat-create-form")
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_role("heading", name="New Personal Access Token created").is_visible()
    assert page.inner_text("#secret-scopes") == "Apps_Add, Apps_Delete, Apps_Get, Workflows_Get"
    assert page.inner_text("#secret-expires") == "2098-06-30 23:59 UTC"
    snap(page, "05-pat-secret")
    secret = copy_secret(page)

    assert list_apps(stub, secret) == codes.SUCCESS
    keys = stub.ListKeys(service_pb2.ListKeysRequest(user_app_id=ids()), metadata=auth(secret))
    assert code_of(keys) == codes.CONN_INSUFFICIENT_SCOPES  # Keys_Get was not granted

    page.click("#continue")
    created = row(page, "pat-table", "ci uploads")
    assert created.locator(".masked").inner_text() == f"sgp_…{secret[-4:]}"
    assert "Apps_Delete" in created.locator(".scopes").inner_text()
    assert created.locator(".expires").inner_text() == "2098-06-30 23:59 UTC"
    key_id = created.get_attribute("data-key-id")
    assert get_key(stub, alice.pat, key_id).expires_at.ToJsonString() == "2098-06-30T23:59:59Z"

    # Edit: description, one more scope, another expiry date.
    created.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Short description").input_value() == "ci uploads"
    assert page.get_by_label("Expires after").input_value() == "2098-06-30"
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
    assert get_key(stub, alice.pat, key_id).expires_at.ToJsonString() == "2099-12-31T23:59:59Z"
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
    assert list_apps(stub, secret) == codes.CONN_KEY_INVALID
    assert list_apps(stub, rolled) == codes.SUCCESS
    page.click("#continue")
    rolled_row = row(page, "pat-table", "ci uploads v2")
    assert rolled_row.locator(".masked").inner_text() == f"sgp_…{rolled[-4:]}"
    assert wait_for_last_use(page, "pat-table", "ci uploads v2").endswith(" UTC")

    # Delete asks first; Cancel keeps the key, and its secret keeps working.
    row(page, "pat-table", "ci uploads v2").get_by_role("link", name="Delete").click()
    assert "Delete the Personal Access Token “ci uploads v2”?" in page.inner_text("main")
    snap(page, "08-pat-delete-confirm")
    page.get_by_role("link", name="Cancel").click()
    assert page.url.endswith("/portal/security")
    assert row(page, "pat-table", "ci uploads v2").count() == 1
    assert list_apps(stub, rolled) == codes.SUCCESS
    row(page, "pat-table", "ci uploads v2").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete Personal Access Token").click()
    assert page.inner_text(".notice").startswith("The key was deleted.")
    assert row(page, "pat-table", "ci uploads v2").count() == 0
    assert list_apps(stub, rolled) == codes.CONN_KEY_INVALID


def test_app_create_visibility_keys_and_delete(base, stub, alice):
    page = alice.page
    app_id = new_id("photos-")
    page.goto(f"{base}/portal/apps")
    page.get_by_role("link", name="Create app").click()
    page.get_by_label("App id").fill(app_id)
    page.get_by_label("Description").fill("holiday pictures")
    snap(page, "09-app-create-form")
    page.get_by_role("button", name="Create app").click()
    assert page.get_by_role("heading", name=f"App “{app_id}” created").is_visible()
    snap(page, "10-app-default-key")
    default_key = copy_secret(page)
    assert default_key.startswith("sgk_")
    scopes = my_scopes(stub, default_key)
    assert code_of(scopes) == codes.SUCCESS and scopes.app.id == app_id

    page.click("#continue")
    assert page.url.endswith(f"/portal/apps/{app_id}")
    assert page.inner_text("#current-visibility") == "Private"
    assert row(page, "app-key-table", f"Default API key for {app_id}").count() == 1

    # Visibility: PUBLIC through PatchApps.
    page.get_by_label("Who can see this app").select_option("50")
    page.get_by_role("button", name="Save visibility").click()
    assert page.inner_text(".notice") == "The app's visibility was saved."
    assert page.inner_text("#current-visibility") == "Public"
    snap(page, "11-app-settings")
    page.goto(f"{base}/portal/apps")
    assert row(page, "apps-table", app_id).locator(".visibility").inner_text() == "Public"
    snap(page, "11-apps")
    row(page, "apps-table", app_id).get_by_role("link", name=app_id).click()

    # App settings -> API keys: create with a dependent scope, copy, use.
    page.get_by_role("link", name="Create API Key").click()
    assert page.get_by_role("heading", name=f"Create API key for {app_id}").is_visible()
    tick(page, "Inputs_Add")
    assert ticked(page, "Inputs_Get")
    page.get_by_label("Short description").fill("uploader")
    snap(page, "12-app-key-create-form")
    page.get_by_role("button", name="Confirm").click()
    snap(page, "12-app-key-secret")
    app_key = copy_secret(page)
    assert app_key.startswith("sgk_")
    scopes = my_scopes(stub, app_key)
    assert code_of(scopes) == codes.SUCCESS
    assert scopes.app.id == app_id and set(scopes.scopes) == {"Inputs_Add", "Inputs_Get"}

    # Edit its description, scopes and expiry.
    page.click("#continue")
    uploader = row(page, "app-key-table", "uploader")
    key_id = uploader.get_attribute("data-key-id")
    uploader.get_by_role("link", name="Edit").click()
    assert ticked(page, "Inputs_Add") and ticked(page, "Inputs_Get")
    page.get_by_label("Short description").fill("uploader and reader")
    tick(page, "Concepts_Get")
    page.get_by_label("Expires after").fill("2097-01-15")
    snap(page, "13-app-key-edit-form")
    page.get_by_role("button", name="Save").click()
    assert page.inner_text(".notice") == "The key was saved."
    edited = row(page, "app-key-table", "uploader and reader")
    assert "Concepts_Get" in edited.locator(".scopes").inner_text()
    assert edited.locator(".expires").inner_text() == "2097-01-15 23:59 UTC"
    assert "Concepts_Get" in my_scopes(stub, app_key).scopes
    key = get_key(stub, alice.pat, key_id)
    assert key.description == "uploader and reader"
    assert key.expires_at.ToJsonString() == "2097-01-15T23:59:59Z"

    # Roll, keeping the old secret for an hour: both work for now.
    edited.get_by_role("link", name="Roll").click()
    page.get_by_label("The current secret").select_option("3600")
    snap(page, "14-app-key-roll")
    page.get_by_role("button", name="Roll").click()
    assert page.get_by_role("heading", name="API key rolled").is_visible()
    rolled = copy_secret(page)
    assert rolled != app_key
    assert code_of(my_scopes(stub, rolled)) == codes.SUCCESS
    assert code_of(my_scopes(stub, app_key)) == codes.SUCCESS  # within the grace period
    page.click("#continue")
    rolled_row = row(page, "app-key-table", "uploader and reader")
    assert rolled_row.locator(".masked").inner_text() == f"sgk_…{rolled[-4:]}"
    assert rolled_row.locator(".expires").inner_text() == "2097-01-15 23:59 UTC"  # kept

    # Delete asks first; Cancel keeps it. Then deleting stops both secrets.
    rolled_row.get_by_role("link", name="Delete").click()
    snap(page, "15-app-key-delete-confirm")
    page.get_by_role("link", name="Cancel").click()
    assert row(page, "app-key-table", "uploader and reader").count() == 1
    assert code_of(my_scopes(stub, rolled)) == codes.SUCCESS
    row(page, "app-key-table", "uploader and reader").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete API key").click()
    assert page.inner_text(".notice").startswith("The key was deleted.")
    assert code_of(my_scopes(stub, rolled)) == codes.CONN_KEY_INVALID
    assert code_of(my_scopes(stub, app_key)) == codes.CONN_KEY_INVALID

    # Delete the app, after confirming (Cancel first keeps it): its default key stops too.
    page.get_by_role("link", name="Delete app").click()
    assert f"Delete the app “{app_id}”?" in page.inner_text("main")
    snap(page, "16-app-delete-confirm")
    page.get_by_role("link", name="Cancel").click()
    assert code_of(my_scopes(stub, default_key)) == codes.SUCCESS
    page.get_by_role("link", name="Delete app").click()
    page.get_by_role("button", name="Delete app").click()
    assert page.inner_text(".notice") == "The app and its API keys were deleted."
    assert row(page, "apps-table", app_id).count() == 0
    assert code_of(my_scopes(stub, default_key)) == codes.CONN_KEY_INVALID


def test_collaborators_and_shared_with_me(base, stub, alice, bob):
    page = alice.page
    guest_page = bob.page
    app_id = new_id("shared-")
    page.goto(f"{base}/portal/apps/new")
    page.get_by_label("App id").fill(app_id)
    page.get_by_role("button", name="Create app").click()
    page.click("#continue")

    def as_bob(method: str, request_type):
        request = request_type(user_app_id=ids(alice.user_id, app_id))
        return code_of(getattr(stub, method)(request, metadata=auth(bob.pat)))

    assert as_bob("GetApp", service_pb2.GetAppRequest) == codes.CONN_DOES_NOT_EXIST

    # A mistake shows the handler's message and keeps what was typed.
    page.get_by_role("link", name="Add collaborator").click()
    page.get_by_label("Their email").fill("nobody-here@example.com")
    tick(page, "Apps_Get")
    page.get_by_role("button", name="Add collaborator").click()
    assert "they must sign up first" in page.inner_text("#form-error")
    assert page.get_by_label("Their email").input_value() == "nobody-here@example.com"
    assert ticked(page, "Apps_Get")

    page.get_by_label("Their email").fill(bob.email)
    tick(page, "Workflows_Get")  # GetApp needs both
    snap(page, "17-collaborator-add")
    page.get_by_role("button", name="Add collaborator").click()
    assert page.inner_text(".notice") == "The collaborator was added."
    added = row(page, "collaborator-table", bob.user_id)
    assert added.locator(".scopes").inner_text() == "Apps_Get, Workflows_Get"
    assert as_bob("GetApp", service_pb2.GetAppRequest) == codes.SUCCESS
    listing = service_pb2.ListConceptsRequest
    assert as_bob("ListConcepts", listing) == codes.CONN_INSUFFICIENT_SCOPES
    # Who collaborates administers alice's account, which no grant on an app opens.
    who = service_pb2.ListCollaboratorsRequest
    assert as_bob("ListCollaborators", who) == codes.CONN_DOES_NOT_EXIST

    guest_page.goto(f"{base}/portal/shared")
    shared = row(guest_page, "shared-table", app_id)
    assert alice.user_id in shared.inner_text()
    assert "Apps_Get, Workflows_Get" in shared.inner_text()
    snap(guest_page, "18-shared-with-me")

    # Edit: one more scope, which bob's PAT may then use on the app.
    added.get_by_role("link", name="Edit").click()
    assert ticked(page, "Apps_Get") and ticked(page, "Workflows_Get")
    tick(page, "Concepts_Get")
    snap(page, "19-collaborator-edit")
    page.get_by_role("button", name="Save").click()
    assert page.inner_text(".notice") == "The collaborator's scopes were saved."
    scopes = row(page, "collaborator-table", bob.user_id).locator(".scopes").inner_text()
    assert scopes == "Apps_Get, Concepts_Get, Workflows_Get"
    assert as_bob("ListConcepts", listing) == codes.SUCCESS

    row(page, "collaborator-table", bob.user_id).get_by_role("link", name="Remove").click()
    assert f"Remove {bob.email} from the app “{app_id}”?" in page.inner_text("main")
    snap(page, "20-collaborator-remove-confirm")
    page.get_by_role("button", name="Remove collaborator").click()
    assert page.inner_text(".notice") == "The collaborator was removed."
    assert row(page, "collaborator-table", bob.user_id).count() == 0
    assert as_bob("GetApp", service_pb2.GetAppRequest) == codes.CONN_DOES_NOT_EXIST
    guest_page.goto(f"{base}/portal/shared")
    assert row(guest_page, "shared-table", app_id).count() == 0


def test_organizations_page_lists_the_users_organizations(base, bob):
    page = bob.page
    page.goto(f"{base}/portal/organizations")
    assert page.inner_text(".empty") == "You do not belong to any organization."
    org_id = new_id("org")
    reply = requests.post(
        f"{base}/scopegate/v1/organizations",
        json={"id": org_id, "name": "Acme Research"},
        headers={"authorization": f"Key {bob.pat}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    page.reload()
    listed = row(page, "orgs-table", org_id)
    assert "Acme Research" in listed.inner_text()
    assert listed.locator(".role").inner_text() == "admin"
    snap(page, "21-organizations")


def test_failed_logins_are_throttled_like_the_api_and_audited(page, visitor, base):
    user_id = new_id("t")
    sign_up(page, base, user_id)
    page.goto(f"{base}/portal/security/keys/new")
    page.get_by_label("Short description").fill("short-lived")
    tick(page, "Inputs_Get")
    page.get_by_role("button", name="Confirm").click()
    page.click("#continue")
    row(page, "pat-table", "short-lived").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete Personal Access Token").click()

    # Someone else guesses the password, from another browser.
    intruder = visitor
    email = f"{user_id}@example.com"
    for _ in range(5):
        log_in(intruder, base, email, "wrong-Password-1")
        assert intruder.inner_text("#form-error") == "Invalid email or password"
    log_in(intruder, base, email)  # even the right password, until the window passes
    error = intruder.inner_text("#form-error")
    assert error.startswith("Too many failed logins: Too many failed login attempts; try again in")
    assert intruder.locator("#signed-in-as").count() == 0
    snap(intruder, "22-login-throttled")
    # One throttle: `POST /v2/login` refuses this account now too.
    api = requests.post(
        f"{base}/v2/login", json={"email": email, "password": PASSWORD}, timeout=10
    ).json()
    assert api["status"]["code"] == codes.CONN_THROTTLED

    # The account's owner, still signed in, sees it all on the audit page, newest first.
    page.goto(f"{base}/portal/audit")
    actions = page.locator("#audit-table .action").all_inner_texts()
    assert actions[:8] == ["login.failed"] * 5 + ["key.delete", "key.create", "login"]
    assert {"user.create", "key.create"} <= set(actions[8:])
    failed = page.locator("#audit-table tr.failed")
    assert failed.count() == 5
    assert failed.first.locator("td[data-label='Result']").inner_text() == "failed"
    assert f"email:{email}" in failed.first.locator(".details").inner_text()
    snap(page, "23-audit")


def test_a_post_without_csrf_token_or_from_another_origin_is_refused(base, alice):
    page = alice.page
    page.goto(f"{base}/portal/security/keys/new")
    token = page.input_value("input[name=csrf_token]")
    url = f"{base}/portal/security/keys/new"
    forged, genuine = new_id("forged-"), new_id("genuine-")
    form = {"description": forged, "scopes": "All"}

    no_token = page.request.post(url, form=form)  # the session cookie goes along
    assert no_token.status == 403
    assert "could not be verified" in no_token.text()
    wrong = page.request.post(url, form={**form, "csrf_token": token[:-2] + "xx"})
    assert wrong.status == 403
    cross_site = page.request.post(
        url, form={**form, "csrf_token": token}, headers={"origin": "http://evil.example"}
    )
    assert cross_site.status == 403
    good = page.request.post(url, form={"description": genuine, "csrf_token": token})
    assert good.status == 200 and "sgp_" in good.text()

    page.goto(f"{base}/portal/security")
    assert row(page, "pat-table", forged).count() == 0
    assert row(page, "pat-table", genuine).count() == 1
    # The login form is protected too, with a pre-session cookie.
    login = page.request.post(f"{base}/portal/login", form={"email": "x@example.com"})
    assert login.status == 403
    # So is every route that takes a form (logging out too: alice stays signed in).
    posts = [route.path for route in page_routes() if "POST" in route.methods]
    assert len(posts) == 19
    for path in posts:
        url = (
            base
            + "/portal"
            + path.format(app_id="a1", key_id="0" * 32, collaborator_id="c1", org_id="o1")
        )
        assert page.request.post(url, form={"description": "x"}).status == 403, path
    page.goto(f"{base}/portal/security")
    assert page.inner_text("#signed-in-as") == alice.user_id


def test_handler_errors_are_readable_and_forms_keep_what_was_typed(base, alice, visitor):
    page = alice.page
    page.goto(f"{base}/portal/apps/new")
    page.get_by_label("App id").fill("not a valid id!")
    page.get_by_label("Description").fill("kept")
    page.get_by_role("button", name="Create app").click()
    assert "app id 'not a valid id!' is not valid" in page.inner_text("#form-error")
    assert page.get_by_label("App id").input_value() == "not a valid id!"
    assert page.get_by_label("Description").input_value() == "kept"
    snap(page, "24-form-error")

    page.goto(f"{base}/portal/security/keys/0123456789abcdef0123456789abcdef/edit")
    assert page.inner_text("#page-error") == "Resource does not exist: No such key."
    snap(page, "25-error-page")
    assert page.goto(f"{base}/portal/apps/no-such-app").status == 404

    visitor.goto(f"{base}/portal/signup")
    visitor.get_by_label("Email").fill(alice.email)
    visitor.get_by_label("User id").fill(new_id("p"))
    visitor.get_by_label("Password").fill("short")
    visitor.get_by_role("button", name="Sign up").click()
    assert "must be at least 8 characters long" in visitor.inner_text("#form-error")
    visitor.get_by_label("Password").fill(PASSWORD)
    visitor.get_by_role("button", name="Sign up").click()
    assert "already taken" in visitor.inner_text("#form-error")
    assert visitor.get_by_label("Email").input_value() == alice.email


def _href(page, selector: str) -> str:
    return page.get_attribute(selector, "href")


def test_every_page_is_readable_at_360px(base, alice, bob, visitor):
    """Each page of the portal (every GET route, the once-shown secret, an error) at 360 px
    wide: no sideways scrolling, every control labelled, a screenshot. (The flows above
    take the 1280 px screenshots.)"""
    page = alice.page
    page.set_viewport_size({"width": NARROW, "height": 900})
    visited: set[str] = set()

    def visit(url: str | None, name: str, page=page) -> None:
        if url is not None:
            page.goto(url)
        route = page_route(page.url)
        if route:
            visited.add(route)
        overflow = sideways_scroll(page)
        assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at {NARROW}px"
        snap(page, f"narrow-{name}")

    # Something of each kind to show: an app with a key of its own and a collaborator.
    app_id = new_id("tour-")
    visit(f"{base}/", "root")
    visit(f"{base}/portal/apps/new", "app-new")
    page.get_by_label("App id").fill(app_id)
    with page.expect_navigation():
        page.get_by_role("button", name="Create app").click()
    visit(None, "app-created-secret")
    visit(f"{base}/portal/apps/{app_id}/collaborators/new", "collaborator-new")
    page.get_by_label("Their email").fill(bob.email)
    tick(page, "Apps_Get")
    with page.expect_navigation():
        page.get_by_role("button", name="Add collaborator").click()
    visit(None, "app-settings")
    app_key = _href(page, "#app-key-table tbody tr:first-child a[aria-label^='Edit']")
    collaborator = _href(page, "#collaborator-table tbody tr:first-child a[aria-label^='Edit']")
    visit(f"{base}{app_key}", "app-key-edit")
    visit(f"{base}{app_key.replace('/edit', '/roll')}", "app-key-roll")
    visit(f"{base}{app_key.replace('/edit', '/delete')}", "app-key-delete")
    visit(f"{base}{app_key.replace('/edit', '/usage')}", "app-key-usage")
    visit(f"{base}/portal/apps/{app_id}/keys/new", "app-key-new")
    visit(f"{base}{collaborator}", "collaborator-edit")
    visit(f"{base}{collaborator.replace('/edit', '/remove')}", "collaborator-remove")
    visit(f"{base}/portal/apps/{app_id}/delete", "app-delete")
    visit(f"{base}/portal/apps", "apps")
    visit(f"{base}/portal/security", "security")
    pat = _href(page, "#pat-table tbody tr:first-child a[aria-label^='Edit']")
    visit(f"{base}{pat}", "pat-edit")
    visit(f"{base}{pat.replace('/edit', '/roll')}", "pat-roll")
    visit(f"{base}{pat.replace('/edit', '/delete')}", "pat-delete")
    visit(f"{base}{pat.replace('/edit', '/usage')}", "pat-usage")
    visit(f"{base}/portal/security/keys/new", "pat-new")
    tick(page, "Models_Get")
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    visit(None, "pat-created-secret")
    visit(f"{base}/portal/shared", "shared")
    visit(f"{base}/portal/organizations", "organizations")
    org_id = new_id("tour-org")
    made = requests.post(
        f"{base}/scopegate/v1/organizations",
        json={"id": org_id},
        headers={"authorization": f"Key {alice.pat}"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    visit(f"{base}/portal/organizations/{org_id}/policy", "org-policy")
    visit(f"{base}/portal/audit", "audit")
    visit(f"{base}/portal/apps/no-such-app", "error")

    visitor.set_viewport_size({"width": NARROW, "height": 900})
    for path in ("/login", "/signup"):
        visit(f"{base}/portal{path}", path.strip("/"), page=visitor)

    missing = set(PAGE_ROUTES) - visited - {"/"}  # "/" leads to /security or /login
    assert missing == set(), f"pages never visited: {sorted(missing)}"
