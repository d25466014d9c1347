"""The portal's credential governance (issue 14), in headless Chromium against a real
server of this module's own: fine-grained PATs on the Security page, leaked secrets and
recent refusals listed there, an organization's token policy and its approvals (the portal
fixtures of tests/support/portal_fixtures.py)."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.clients import new_id
from tests.support.portal import (
    auth,
    copy_secret,
    ids,
    row,
    tick,
)


def _app(stub, pat: str) -> str:
    app_id = new_id("app")
    reply = stub.PostApps(
        service_pb2.PostAppsRequest(user_app_id=ids(), apps=[resources_pb2.App(id=app_id)]),
        metadata=auth(pat),
    )
    assert reply.status.code == codes.SUCCESS, reply.status
    return app_id


def _get_app(stub, secret: str, app_id: str) -> int:
    reply = stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=ids(app_id=app_id)), metadata=auth(secret)
    )
    return reply.status.code


def test_fine_grained_pat_made_shown_and_widened(base, stub, alice):
    page = alice.page
    mine, other = _app(stub, alice.pat), _app(stub, alice.pat)
    page.goto(f"{base}/portal/security/keys/new")
    page.get_by_label("Short description").fill("only one app")
    page.get_by_label("Only these apps and organizations").fill(mine)
    tick(page, "Apps_Get")
    tick(page, "Workflows_Get")
    page.get_by_role("button", name="Confirm").click()
    secret = copy_secret(page)
    assert _get_app(stub, secret, mine) == codes.SUCCESS
    assert _get_app(stub, secret, other) == codes.CONN_DOES_NOT_EXIST

    page.click("#continue")
    shown = row(page, "pat-table", "only one app")
    assert shown.locator(".limits").inner_text() == f"only {alice.user_id}/{mine}"
    # Another user's app is refused on the form, with what to do.
    shown.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Only these apps").input_value() == f"{alice.user_id}/{mine}"
    page.get_by_label("Only these apps").fill(f"someone-else/{mine}")
    page.get_by_role("button", name="Save").click()
    assert "not among your apps" in page.inner_text("main")
    # Emptied: the token reaches all of alice's apps again.
    page.get_by_label("Only these apps").fill("")
    page.get_by_role("button", name="Save").click()
    assert page.inner_text(".notice") == "The key was saved."
    assert row(page, "pat-table", "only one app").locator(".limits").count() == 0
    assert _get_app(stub, secret, other) == codes.SUCCESS


def test_security_page_shows_leaked_secrets_revoked(base, stub, alice, portal_server):
    """A PAT reported leaked (here by the operator's `keys revoke-leaked -`) is listed on
    its owner's Security page with where it leaked, and is gone from the PAT list."""
    page = alice.page
    page.goto(f"{base}/portal/security/keys/new")
    page.get_by_label("Short description").fill("pasted by mistake")
    tick(page, "Apps_Get")
    page.get_by_role("button", name="Confirm").click()
    secret = copy_secret(page)
    result = portal_server.cli(
        "keys", "revoke-leaked", "-", "--where", "https://paste.example/abc", input=secret + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert _get_app(stub, secret, "nothing") == codes.CONN_KEY_INVALID
    page.goto(f"{base}/portal/security")
    leaked = page.locator("#leak-table tbody tr", has_text="pasted by mistake")
    assert leaked.locator(".location").inner_text() == "https://paste.example/abc"
    assert leaked.locator(".source").inner_text() == "operator"
    assert secret not in page.content()
    assert row(page, "pat-table", "pasted by mistake").count() == 0


def test_security_page_explains_recent_refusals(base, stub, alice):
    """A refused request of one of alice's PATs is listed with why and a one-line fix,
    under the key's description, once written (with the last-use times, every 5 s)."""
    import time

    page = alice.page
    app_id = _app(stub, alice.pat)
    made = stub.PostKeys(
        service_pb2.PostKeysRequest(
            user_app_id=ids(),
            keys=[
                resources_pb2.Key(
                    type="personal_access_token", description="reads apps", scopes=["Apps_Get"]
                )
            ],
        ),
        metadata=auth(alice.pat),
    )
    secret = made.keys[0].id
    refused = stub.ListConcepts(
        service_pb2.ListConceptsRequest(user_app_id=ids(app_id=app_id)), metadata=auth(secret)
    )
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    listed = page.locator(f"#refusal-table tr[data-request-id='{refused.status.req_id}']")
    deadline = time.monotonic() + 15
    while True:
        page.goto(f"{base}/portal/security")
        if listed.count() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert listed.locator(".credential").inner_text() == "reads apps"
    assert listed.locator(".layer").inner_text().startswith("scopes: Insufficient scopes")
    assert "Concepts_Get" in listed.locator(".layer").inner_text()
    assert listed.locator(".fix").inner_text().startswith("Add the missing scopes")
    assert secret not in page.content()


def test_an_admin_sets_the_policy_and_decides_on_a_members_token(base, stub, alice, portal_server):
    """The organization's page: alice (admin) requires approval; her member's fine-grained
    token waits, is denied with a reason the member's refusal shows, then approved."""
    import requests

    org_id = new_id("org")
    headers = {"authorization": f"Key {alice.pat}"}
    orgs = f"{base}/scopegate/v1/organizations"
    assert requests.post(orgs, json={"id": org_id}, headers=headers, timeout=30).ok
    made = stub.PostApps(
        service_pb2.PostAppsRequest(user_app_id=ids(org_id), apps=[resources_pb2.App(id="shared")]),
        metadata=auth(alice.pat),
    )
    assert made.status.code == codes.SUCCESS
    member = new_id()
    member_pat = portal_server.create_user(member)
    added = requests.post(
        f"{orgs}/{org_id}/members",
        json={"user_id": member, "role": "org_contributor"},
        headers=headers,
        timeout=30,
    )
    assert added.ok, added.text
    page = alice.page
    page.goto(f"{base}/portal/organizations")
    page.locator(f"tr[data-org-id='{org_id}'] a.policy-link").click()
    page.get_by_label("Members' fine-grained tokens need an admin's approval").check()
    page.get_by_role("button", name="Save policy").click()
    assert page.inner_text(".notice") == "The organization's token policy was saved."
    token = (
        stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=ids(),
                keys=[
                    resources_pb2.Key(
                        type="personal_access_token",
                        description="ci",
                        scopes=["All"],
                        apps=[resources_pb2.App(user_id=org_id, id="shared")],
                    )
                ],
            ),
            metadata=auth(member_pat),
        )
        .keys[0]
        .id
    )

    def reach():
        return stub.GetApp(
            service_pb2.GetAppRequest(user_app_id=ids(org_id, "shared")), metadata=auth(token)
        ).status

    assert "pending approval" in reach().details
    page.reload()
    request = page.locator("#token-requests tbody tr", has_text=member)
    assert request.locator(".state").inner_text() == "pending"
    request.get_by_label("Reason").fill("use the CI token")
    request.get_by_role("button", name="Deny").click()
    assert reach().details.endswith("denied this token: use the CI token")
    page.locator("#token-requests tbody tr", has_text=member).get_by_role(
        "button", name="Approve"
    ).click()
    assert reach().code == codes.SUCCESS
