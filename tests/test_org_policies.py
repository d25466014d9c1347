"""Organization token policies (issue 14, part 2) against a real server on both databases
and transports: a credential that does not comply is blocked on the organization's apps
(11008, details saying which policy and how to comply) and keeps working elsewhere;
approvals; who may read and change a policy; the CLI. Expectations from the README
("Organization policies")."""

from __future__ import annotations

import json
import time

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.api import ORGS, add_collaborator, call, me, ok, rest
from tests.support.clients import Client, new_id

R = resources_pb2
BLOCKED = "Blocked by the organization's token policy"


def _app(client: Client, pat: str, owner: str = "me") -> tuple[str, str]:
    app_id = new_id("app")
    made = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(user_id=owner), apps=[R.App(id=app_id)]),
            metadata=client.auth(pat),
        )
    )
    return app_id, made.apps[0].metadata["default_api_key"]


def _pat(client: Client, pat: str, days: int | None = None, apps=()) -> tuple[str, str]:
    """(secret, public id) of a new PAT with scope All."""
    key = R.Key(type="personal_access_token", scopes=["All"], apps=list(apps))
    if days is not None:
        at = Timestamp()
        at.FromSeconds(int(time.time()) + days * 86400)
        key.expires_at.CopyFrom(at)
    made = ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(user_app_id=me(), keys=[key]), metadata=client.auth(pat)
        )
    )
    secret = made.keys[0].id
    listed = ok(
        client.stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=me()), metadata=client.auth(pat)
        )
    )
    return secret, listed.keys[0].id  # newest first


def _get_app(client: Client, secret: str, owner: str, app_id: str):
    return client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=owner, app_id=app_id)),
        metadata=client.auth(secret),
    )


def _code(client: Client, secret: str, owner: str, app_id: str) -> int:
    return _get_app(client, secret, owner, app_id).status.code


def _policy(server, org_id: str, pat: str, body: dict) -> dict:
    return call(server, "PUT", f"{ORGS}/{org_id}/policy", pat, body)["policy"]


def _world(server, client: Client, user):
    _admin, admin_pat = user
    org_id = new_id("org")
    call(server, "POST", ORGS, admin_pat, {"id": org_id})
    org_app, org_key = _app(client, admin_pat, org_id)
    member = new_id()
    member_pat = server.create_user(member)
    call(
        server,
        "POST",
        f"{ORGS}/{org_id}/members",
        admin_pat,
        {"user_id": member, "role": "org_contributor"},
    )
    own_app, _ = _app(client, member_pat)
    return org_id, org_app, org_key, admin_pat, member, member_pat, own_app


def test_lifetime_and_expiry_block_on_the_organizations_apps_only(server, client: Client, user):
    org_id, org_app, org_key, admin_pat, _member, member_pat, own_app = _world(server, client, user)
    assert _code(client, member_pat, org_id, org_app) == codes.SUCCESS
    assert _policy(server, org_id, admin_pat, {"max_lifetime_days": 30})["max_lifetime_days"] == 30
    blocked = _get_app(client, member_pat, org_id, org_app)  # at once: no expiry
    assert blocked.status.code == codes.CONN_KEY_INVALID
    assert blocked.status.description == BLOCKED
    assert "max_lifetime_days" in blocked.status.details and "30 days" in blocked.status.details
    assert _code(client, org_key, "", "") == codes.CONN_KEY_INVALID  # the app's key too
    assert _code(client, member_pat, "me", own_app) == codes.SUCCESS  # elsewhere: as before
    short, _ = _pat(client, member_pat, days=10)
    long, _ = _pat(client, member_pat, days=40)
    assert _code(client, short, org_id, org_app) == codes.SUCCESS
    assert _code(client, long, org_id, org_app) == codes.CONN_KEY_INVALID
    # require_expiry alone: any expiry will do.
    _policy(server, org_id, admin_pat, {"max_lifetime_days": None, "require_expiry": True})
    assert _code(client, long, org_id, org_app) == codes.SUCCESS
    refused = _get_app(client, member_pat, org_id, org_app)
    assert "require_expiry" in refused.status.details
    # The refusal is explained as the organization's policy.
    _status, body = rest(
        server, "GET", f"/scopegate/v1/denials/{refused.status.req_id}", member_pat
    )
    assert body["denial"]["layer"] == "organization policy", body
    # Lifted: the credential works again at once.
    _policy(server, org_id, admin_pat, {"require_expiry": False})
    assert _code(client, member_pat, org_id, org_app) == codes.SUCCESS


def test_fine_grained_and_approval(server, client: Client, user):
    org_id, org_app, _, admin_pat, _member, member_pat, _ = _world(server, client, user)
    _policy(server, org_id, admin_pat, {"require_fine_grained": True})
    assert _code(client, member_pat, org_id, org_app) == codes.CONN_KEY_INVALID
    fine, fine_id = _pat(client, member_pat, apps=[R.App(user_id=org_id, id="*")])
    assert _code(client, fine, org_id, org_app) == codes.SUCCESS
    _policy(server, org_id, admin_pat, {"approval_required": True})
    pending = _get_app(client, fine, org_id, org_app)
    assert pending.status.code == codes.CONN_KEY_INVALID
    assert "pending approval" in pending.status.details
    listed = call(server, "GET", f"{ORGS}/{org_id}/token-requests", admin_pat)["token_requests"]
    assert [(t["key_id"], t["state"]) for t in listed] == [(fine_id, "pending")]
    decide = f"{ORGS}/{org_id}/token-requests/{fine_id}"
    call(server, "POST", decide, admin_pat, {"decision": "deny", "reason": "use the CI token"})
    denied = _get_app(client, fine, org_id, org_app)
    assert denied.status.details.endswith("denied this token: use the CI token")
    call(server, "POST", decide, admin_pat, {"decision": "approve"})
    assert _code(client, fine, org_id, org_app) == codes.SUCCESS
    # Its resources changed: asked for again.
    call(
        server,
        "PUT",
        f"/scopegate/v1/users/me/keys/{fine_id}/resources",
        member_pat,
        {"apps": [f"{org_id}/{org_app}"]},
    )
    assert "pending approval" in _get_app(client, fine, org_id, org_app).status.details
    # Admins' own tokens are exempt from approval.
    admin_fine, _ = _pat(client, admin_pat, apps=[R.App(user_id=org_id, id="*")])
    assert _code(client, admin_fine, org_id, org_app) == codes.SUCCESS


def test_who_may_read_and_change_a_policy(server, client: Client, user):
    org_id, _org_app, org_key, admin_pat, _member, member_pat, _ = _world(server, client, user)
    path = f"{ORGS}/{org_id}/policy"
    assert call(server, "GET", path, member_pat)["policy"]["require_expiry"] is False
    status, body = rest(server, "PUT", path, member_pat, {"require_expiry": True})
    assert body["status"]["code"] == codes.CONN_INSUFFICIENT_SCOPES
    stranger = server.create_user(new_id())
    _, _, guest_pat, _ = add_collaborator(server, client, admin_pat, ["All"])  # another app
    for secret in (stranger, guest_pat):
        for verb, sent in (("GET", None), ("PUT", {"require_expiry": True})):
            status, body = rest(server, verb, path, secret, sent)
            assert body["status"]["code"] == codes.CONN_DOES_NOT_EXIST, body
        status, body = rest(server, "GET", f"{ORGS}/{org_id}/token-requests", secret)
        assert body["status"]["code"] == codes.CONN_DOES_NOT_EXIST
    status, body = rest(server, "PUT", path, org_key, {"require_expiry": True})
    assert body["status"]["code"] != codes.SUCCESS
    assert call(server, "GET", path, admin_pat)["policy"]["require_expiry"] is False
    for bad in (
        {"max_lifetime_days": 0},
        {"max_lifetime_days": "x"},
        {"nope": 1},
        {"require_expiry": 1},
    ):
        status, body = rest(server, "PUT", path, admin_pat, bad)
        assert status == 400 and body["status"]["details"], body
    status, body = rest(
        server, "POST", f"{ORGS}/{org_id}/token-requests/nope", admin_pat, {"decision": "approve"}
    )
    assert body["status"]["code"] == codes.CONN_DOES_NOT_EXIST


def test_cli_sets_the_policy_and_decides(server, user):
    from tests.support.clients import make_stub

    client = Client("grpc", make_stub(server, "grpc"))
    org_id, org_app, _, _admin_pat, _member, member_pat, _ = _world(server, client, user)

    def run(*args: str):
        result = server.cli("orgs", *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert run("policy", org_id)["policy"]["approval_required"] is False
    shown = run("policy", org_id, "--approval-required", "--max-lifetime-days", "90")
    assert shown["policy"] == {
        "max_lifetime_days": 90,
        "require_expiry": False,
        "require_fine_grained": False,
        "approval_required": True,
    }
    fine, fine_id = _pat(client, member_pat, days=5, apps=[R.App(user_id=org_id, id=org_app)])
    deadline = time.monotonic() + 2  # the running server applies it within the bound
    while _code(client, fine, org_id, org_app) != codes.CONN_KEY_INVALID:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert run("token-requests", org_id)["token_requests"][0]["state"] == "pending"
    run("approve", org_id, fine_id)
    deadline = time.monotonic() + 2
    while _code(client, fine, org_id, org_app) != codes.SUCCESS:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run("policy", org_id, "--no-approval-required", "--no-max-lifetime")
    assert run("policy", org_id)["policy"]["max_lifetime_days"] is None
