"""Credentials end to end: sessions, expiry, roll, revocation, introspection, audit."""

from __future__ import annotations

import time

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.api import PASSWORD, http, login, me, ok
from tests.support.clients import Client, new_id
from tests.support.server_process import ServerProcess


@pytest.fixture
def account(server):
    user_id = new_id()
    pat = server.create_user(user_id, password=PASSWORD)
    return user_id, f"{user_id}@example.com", pat


def session_metadata(client: Client, token: str):
    # The JSON channel only sends `authorization`; gRPC callers can use the session header.
    if client.transport == "json":
        return client.auth(token)
    return (("x-clarifai-session-token", token),)


def test_login_gives_a_session_for_pat_and_session_methods(server, client: Client, account):
    user_id, email, _ = account
    status, body = login(server, email.upper())
    assert status == 200, body
    assert body["status"]["code"] == codes.SUCCESS
    assert body["v2_user_id"] == user_id
    token = body["session_token"]
    assert token.startswith("sgs_")
    metadata = session_metadata(client, token)
    ok(client.stub.ListApps(service_pb2.ListAppsRequest(user_app_id=me()), metadata=metadata))
    scopes = ok(
        client.stub.ListScopes(
            service_pb2.ListScopesRequest(key_type="app_specific_key"), metadata=metadata
        )
    )
    endpoints = {e.endpoint for e in scopes.endpoint_deps}
    assert "/clarifai.api.V2/PostModelOutputs" in endpoints
    assert "/clarifai.api.V2/PostKeys" not in endpoints  # PAT-only
    assert any(
        s.scope == "Inputs_Add" and "Inputs_Get" in s.depending_scopes for s in scopes.scope_deps
    )
    weak = client.stub.PostValidatePassword(
        service_pb2.PostValidatePasswordRequest(
            user_app_id=me(), password=resources_pb2.Password(plaintext="abc")
        ),
        metadata=metadata,
    )
    assert weak.status.code == codes.CONN_INVALID_REQUEST
    assert weak.password_violations.minimum_length and weak.password_violations.numeric_needed
    strong = client.stub.PostValidatePassword(
        service_pb2.PostValidatePasswordRequest(
            user_app_id=me(), password=resources_pb2.Password(plaintext="a-long 1 phrase")
        ),
        metadata=metadata,
    )
    assert strong.status.code == codes.SUCCESS


def test_session_only_methods_refuse_pats(client: Client, account):
    _, _, pat = account
    response = client.stub.ListScopes(service_pb2.ListScopesRequest(), metadata=client.auth(pat))
    assert response.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert "session" in response.status.details


def test_bad_logins_look_alike_then_throttle(server, account):
    _, email, _ = account
    wrong = login(server, email, "wrong password 1")
    nobody = login(server, f"nobody-{email}", "wrong password 1")
    assert wrong[0] == nobody[0] == 401
    assert (
        wrong[1]["status"]["code"] == nobody[1]["status"]["code"] == codes.CONN_CREDENTIALS_INVALID
    )
    assert wrong[1]["status"]["description"] == nobody[1]["status"]["description"]
    for _ in range(4):
        login(server, email, "wrong password 1")
    status, body = login(server, email)  # right password, but locked for now
    assert status == 429
    assert body["status"]["code"] == codes.CONN_THROTTLED
    assert "try again in" in body["status"]["details"]


def test_logout_ends_the_session(server, account):
    _, email, _ = account
    token = login(server, email)[1]["session_token"]
    headers = {"x-clarifai-session-token": token}
    assert http(server, "GET", "/v2/users/me/apps", headers=headers)[0] == 200
    assert http(server, "POST", "/v2/logout", headers=headers)[0] == 200
    status, body = http(server, "GET", "/v2/users/me/apps", headers=headers)
    assert status == 401 and body["status"]["code"] == codes.CONN_KEY_INVALID


def _timestamp(seconds_from_now: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromSeconds(int(time.time() + seconds_from_now))
    return stamp


def test_expiry_is_honoured_and_explained(client: Client, account):
    _, _, pat = account
    past = client.stub.PostKeys(
        service_pb2.PostKeysRequest(
            user_app_id=me(),
            keys=[
                resources_pb2.Key(
                    type="personal_access_token", scopes=["All"], expires_at=_timestamp(-10)
                )
            ],
        ),
        metadata=client.auth(pat),
    )
    assert past.status.code == codes.CONN_INVALID_REQUEST and "past" in past.status.details
    soon = ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=me(),
                keys=[
                    resources_pb2.Key(
                        type="personal_access_token", scopes=["All"], expires_at=_timestamp(2)
                    )
                ],
            ),
            metadata=client.auth(pat),
        )
    ).keys[0]
    assert soon.expires_at.seconds > 0
    ok(client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(soon.id)))
    time.sleep(2.2)
    expired = client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(soon.id))
    assert expired.status.code == codes.CONN_KEY_INVALID
    assert "expired at" in expired.status.details
    listed = ok(
        client.stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=me(), not_expired=True),
            metadata=client.auth(pat),
        )
    ).keys
    assert all(k.expires_at.seconds == 0 or k.expires_at.seconds > time.time() for k in listed)


def _new_pat(client: Client, pat: str, **fields) -> resources_pb2.Key:
    return ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=me(), keys=[resources_pb2.Key(type="personal_access_token", **fields)]
            ),
            metadata=client.auth(pat),
        )
    ).keys[0]


def test_roll_with_and_without_grace(server, client: Client, account):
    _, _, pat = account
    for grace, old_still_works in ((0, False), (60, True)):
        key = _new_pat(client, pat, scopes=["All"], description="rolled")
        public_id = ok(
            client.stub.GetKey(
                service_pb2.GetKeyRequest(user_app_id=me(), key_id=key.id),
                metadata=client.auth(pat),
            )
        ).key.id
        status, body = http(
            server,
            "POST",
            f"/scopegate/v1/users/me/keys/{public_id}/roll",
            headers={"authorization": f"Key {pat}"},
            body={"grace_seconds": grace},
        )
        assert status == 200, body
        new_secret = body["keys"][0]["id"]
        assert new_secret.startswith("sgp_") and new_secret != key.id
        ok(client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(new_secret)))
        old = client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(key.id))
        assert (old.status.code == codes.SUCCESS) is old_still_works
        # Same key id and description after the roll.
        again = ok(
            client.stub.GetKey(
                service_pb2.GetKeyRequest(user_app_id=me(), key_id=new_secret),
                metadata=client.auth(pat),
            )
        ).key
        assert again.id == public_id and again.description == "rolled"


def test_roll_refuses_others_keys_and_bad_input(server, account):
    _, _, pat = account
    other_pat = server.create_user(new_id())
    status, body = http(
        server,
        "POST",
        f"/scopegate/v1/users/me/keys/{other_pat}/roll",
        headers={"authorization": f"Key {pat}"},
        body={},
    )
    assert status == 404 and body["status"]["code"] == codes.CONN_DOES_NOT_EXIST
    status, body = http(
        server,
        "POST",
        "/scopegate/v1/users/me/keys/x/roll",
        headers={"authorization": f"Key {pat}"},
        body={"grace_seconds": "soon"},
    )
    assert status == 400
    status, body = http(server, "POST", "/scopegate/v1/users/me/keys/x/roll", body={})
    assert status == 401


def test_patch_and_delete_take_effect_at_once(client: Client, account):
    _, _, pat = account
    key = _new_pat(client, pat, scopes=["All"])
    ok(
        client.stub.ListApps(
            service_pb2.ListAppsRequest(user_app_id=me()), metadata=client.auth(key.id)
        )
    )
    patched = ok(
        client.stub.PatchKeys(
            service_pb2.PatchKeysRequest(
                user_app_id=me(),
                action="overwrite",
                keys=[resources_pb2.Key(id=key.id, description="narrow", scopes=["Inputs:Add"])],
            ),
            metadata=client.auth(pat),
        )
    ).keys[0]
    assert set(patched.scopes) == {"Inputs_Add", "Inputs_Get"}  # dependencies added
    narrowed = client.stub.ListApps(
        service_pb2.ListAppsRequest(user_app_id=me()), metadata=client.auth(key.id)
    )
    assert narrowed.status.code == codes.CONN_INSUFFICIENT_SCOPES
    ok(
        client.stub.DeleteKey(
            service_pb2.DeleteKeyRequest(user_app_id=me(), key_id=key.id), metadata=client.auth(pat)
        )
    )
    gone = client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(key.id))
    assert gone.status.code == codes.CONN_KEY_INVALID


def test_unknown_scopes_and_endpoints_are_refused_with_the_valid_ones(client: Client, account):
    _, _, pat = account
    response = client.stub.PostKeys(
        service_pb2.PostKeysRequest(
            user_app_id=me(),
            keys=[resources_pb2.Key(type="personal_access_token", scopes=["Inputs_Get", "Bogus"])],
        ),
        metadata=client.auth(pat),
    )
    assert response.status.code == codes.CONN_INVALID_REQUEST
    assert "Bogus" in response.status.details and "Models_Get" in response.status.details
    response = client.stub.PostKeys(
        service_pb2.PostKeysRequest(
            user_app_id=me(),
            keys=[resources_pb2.Key(type="personal_access_token", endpoints=["/nope.V2/X"])],
        ),
        metadata=client.auth(pat),
    )
    assert response.status.code == codes.CONN_INVALID_REQUEST


def test_endpoint_grant_allows_without_scopes(client: Client, account):
    _, _, pat = account
    key = _new_pat(client, pat, scopes=[], endpoints=["/clarifai.api.V2/ListApps"])
    ok(
        client.stub.ListApps(
            service_pb2.ListAppsRequest(user_app_id=me()), metadata=client.auth(key.id)
        )
    )
    other = client.stub.GetUser(
        service_pb2.GetUserRequest(user_app_id=me()), metadata=client.auth(key.id)
    )
    assert other.status.code in (codes.SUCCESS, codes.CONN_INSUFFICIENT_SCOPES)
    mine = ok(client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(key.id)))
    assert list(mine.endpoints) == ["/clarifai.api.V2/ListApps"]


def test_audit_log_records_events_without_secrets(server, client: Client, account):
    user_id, _, pat = account
    key = _new_pat(client, pat, scopes=["All"])
    ok(
        client.stub.DeleteKey(
            service_pb2.DeleteKeyRequest(user_app_id=me(), key_id=key.id), metadata=client.auth(pat)
        )
    )
    entries = ok(
        client.stub.PostAuditLogSearches(
            service_pb2.PostAuditLogSearchesRequest(user_app_id=me()), metadata=client.auth(pat)
        )
    ).entries
    actions = [e.description for e in entries]
    assert actions[:2] == ["key.delete", "key.create"]
    assert "user.create" in actions
    assert all(e.user.id == user_id and e.req_id for e in entries[:2])
    # `details` is repeated: whole facts, one per element.
    assert entries[0].details[0].startswith("credential=personal_access_token:")
    assert entries[0].details[1].startswith("target=key:")
    text = str(entries)
    assert key.id not in text and pat not in text


def test_secrets_never_in_database_or_logs(server, client: Client, account):
    _, _, pat = account
    key = _new_pat(client, pat, scopes=["All"])
    ok(client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(key.id)))
    client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(key.id + "x"))
    if server.database_url is None:
        raw = b"".join(p.read_bytes() for p in server.data_dir.glob("scopegate.db*"))
        assert pat.encode() not in raw and key.id.encode() not in raw
    assert pat not in server.log() and key.id not in server.log()


def test_sessions_expire_after_the_configured_lifetime(tmp_path):
    server = ServerProcess(
        data_dir=tmp_path, database_url=None, extra_env={"SCOPEGATE_SESSION_SECONDS": "1"}
    ).start()
    try:
        user_id = new_id()
        server.create_user(user_id, password=PASSWORD)
        token = login(server, f"{user_id}@example.com")[1]["session_token"]
        headers = {"x-clarifai-session-token": token}
        assert http(server, "GET", "/v2/users/me/apps", headers=headers)[0] == 200
        time.sleep(1.2)
        status, body = http(server, "GET", "/v2/users/me/apps", headers=headers)
        assert status == 401 and "expired" in body["status"]["details"]
    finally:
        assert server.stop() == 0


def test_rest_key_listing_shows_masked_form_and_last_use(server, account):
    _, _, pat = account
    headers = {"authorization": f"Key {pat}"}
    assert http(server, "GET", "/v2/users/me/apps", headers=headers)[0] == 200
    deadline = time.monotonic() + 10  # last use is written in batches every few seconds
    while True:
        status, body = http(server, "GET", "/v2/users/me/keys", headers=headers)
        assert status == 200
        default = next(k for k in body["keys"] if k["description"] == "Default PAT")
        if default["last_used_at"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert default["masked"] == f"sgp_…{pat[-4:]}"
    assert default["last_used_at"]
    one = http(server, "GET", f"/v2/users/me/keys/{default['id']}", headers=headers)[1]["key"]
    assert one["masked"] == default["masked"]
    assert pat not in str(body)


def test_deleting_an_app_deletes_its_keys(client: Client, account):
    _, _, pat = account
    app_id = new_id("app")
    created = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[resources_pb2.App(id=app_id)]),
            metadata=client.auth(pat),
        )
    )
    api_key = created.apps[0].metadata["default_api_key"]
    ok(client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(api_key)))
    ok(
        client.stub.DeleteApp(
            service_pb2.DeleteAppRequest(user_app_id=me(app_id=app_id)), metadata=client.auth(pat)
        )
    )
    gone = client.stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(api_key))
    assert gone.status.code == codes.CONN_KEY_INVALID
    keys = ok(
        client.stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=me()), metadata=client.auth(pat)
        )
    ).keys
    assert all(k.type != "app_specific_key" for k in keys)


def test_my_scopes_user_and_root_describe_the_pat(client: Client, account):
    _, _, pat = account
    narrow = _new_pat(client, pat, scopes=["Inputs_Get"])
    for call, request in (
        (client.stub.MyScopesUser, service_pb2.MyScopesUserRequest()),
        (client.stub.MyScopesRoot, service_pb2.MyScopesRootRequest()),
    ):
        response = ok(call(request, metadata=client.auth(narrow.id)))
        assert list(response.scopes) == ["Inputs_Get"]
