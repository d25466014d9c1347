"""The key form's limits (issue 16): set when a PAT is made, shown in the list with the
remaining count, changed and lifted on the edit form, refused with what to do; in headless
Chromium against a real server (fixtures of tests/support/portal_fixtures.py)."""

from __future__ import annotations

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.portal import auth, copy_secret, ids, row, tick


def _get_user(stub, secret: str) -> int:
    reply = stub.GetUser(service_pb2.GetUserRequest(user_app_id=ids()), metadata=auth(secret))
    return reply.status.code


def test_limits_set_shown_changed_and_lifted_on_the_key_form(base, stub, alice):
    page = alice.page
    page.goto(f"{base}/portal/security/keys/new")
    page.get_by_label("Short description").fill("metered")
    page.get_by_label("Rate limits").fill("100/m")
    page.get_by_label("Usage quota: requests remaining").fill("3")
    page.get_by_label("Refill (optional)").fill("daily:3")
    tick(page, "Apps_Get")
    page.get_by_role("button", name="Confirm").click()
    secret = copy_secret(page)
    assert [_get_user(stub, secret) for _ in range(4)] == [codes.SUCCESS] * 3 + [
        codes.CONN_EXCEEDS_LIMITS
    ]

    page.click("#continue")
    shown = row(page, "pat-table", "metered").locator(".key-limits").inner_text()
    assert shown == "100/m; 0 left (daily 3)"
    row(page, "pat-table", "metered").get_by_role("link", name="Edit").click()
    assert page.get_by_label("Rate limits").input_value() == "100/m"
    assert page.get_by_label("Usage quota: requests remaining").input_value() == "0"
    # Bad input is refused with what to write, and nothing changes.
    page.get_by_label("Allowed addresses").fill("not-an-address")
    page.get_by_role("button", name="Save").click()
    assert "CIDR" in page.inner_text("main")
    # Give it 2 more requests, from loopback only.
    page.get_by_label("Allowed addresses").fill("127.0.0.0/8")
    page.get_by_label("Usage quota: requests remaining").fill("2")
    page.get_by_role("button", name="Save").click()
    assert page.inner_text(".notice") == "The key was saved."
    assert [_get_user(stub, secret) for _ in range(3)] == [codes.SUCCESS] * 2 + [
        codes.CONN_EXCEEDS_LIMITS
    ]
    # Lifted: every field emptied.
    row(page, "pat-table", "metered").get_by_role("link", name="Edit").click()
    for label in ("Rate limits", "Usage quota: requests remaining", "Refill (optional)"):
        page.get_by_label(label).fill("")
    page.get_by_label("Allowed addresses").fill("")
    page.get_by_role("button", name="Save").click()
    assert row(page, "pat-table", "metered").locator(".key-limits").count() == 0
    assert _get_user(stub, secret) == codes.SUCCESS
