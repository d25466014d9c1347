"""Usage counts on real servers (issue 18): exact counts by outcome and method after a known
mix of allowed and refused calls over gRPC (the official stub) and REST (requests), read
back through the usage routes and the CLI; across two instances on one database and a
restart; and who may read them (owner, collaborator, stranger, a collaborator on another
app, API keys), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import requests
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import add_collaborator, me, ok
from tests.support.apps import new_app
from tests.support.clients import Client, make_stub, new_id
from tests.support.server_process import ServerProcess
from tests.support.servers import BACKENDS, SERVER_ENV

FLUSH = {"SCOPEGATE_LAST_USED_WRITE_SECONDS": "0.2"}
GARBAGE = "sgp_" + "A" * 36  # fails its checksum


def _database_url(request, name: str) -> str | None:
    if request.param != "postgres":
        return None
    cluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database(f"{name}_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    url = _database_url(request, "usage")
    data_dir = tmp_path_factory.mktemp("usage")
    started = ServerProcess(data_dir, url, extra_env={**SERVER_ENV, **FLUSH}).start()
    yield started
    assert started.stop() == 0


def _grpc(server) -> Client:
    return Client("grpc", make_stub(server, "grpc"))


def _get(server, path: str, secret: str, **params) -> tuple[int, dict]:
    reply = requests.get(
        server.http_url + path,
        headers={"authorization": f"Key {secret}"},
        params=params,
        timeout=30,
    )
    return reply.status_code, reply.json()


def _stored(server, credential_id: str) -> dict[tuple[str, str], int]:
    """What the database holds for a credential: {(method, outcome): count}."""
    from scopegate.store import usage

    engine, _ = server._accounts()
    with engine.connect() as conn:
        rows = usage.counts(conn, 0, 2**31 - 1, credential_ids=[credential_id])
    found: dict[tuple[str, str], int] = {}
    for row in rows:
        found[(row.method, row.outcome)] = found.get((row.method, row.outcome), 0) + row.count
    return found


def _wait_for(server, credential_id: str, expected: dict, seconds: float = 10.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        found = _stored(server, credential_id)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _new_key(client: Client, pat: str, scopes: list[str], app_id: str = "") -> tuple[str, str]:
    """A new key of the PAT's user: (secret, public id)."""
    key = resources_pb2.Key(description="usage test", scopes=scopes)
    if app_id:
        key.type = "app_specific_key"
        key.apps.append(resources_pb2.App(id=app_id))
    else:
        key.type = "personal_access_token"
    made = ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(user_app_id=me(), keys=[key]), metadata=client.auth(pat)
        )
    )
    secret = made.keys[0].id
    return secret, _public_id(client, pat, secret)


def _public_id(client: Client, pat: str, secret: str) -> str:
    got = ok(
        client.stub.GetKey(
            service_pb2.GetKeyRequest(user_app_id=me(), key_id=secret), metadata=client.auth(pat)
        )
    )
    return got.key.id


def _get_app(client: Client, secret: str, user_id: str, app_id: str) -> int:
    request = service_pb2.GetAppRequest(user_app_id=me(user_id=user_id, app_id=app_id))
    return client.stub.GetApp(request, metadata=client.auth(secret)).status.code


def _rest_status(server, path: str, secret: str) -> int:
    return _get(server, path, secret)[1]["status"]["code"]


def test_counts_are_exact_after_a_known_mix_of_calls_on_both_transports(server):
    grpc = _grpc(server)
    owner = new_id()
    pat = server.create_user(owner)
    app_id, app_key = new_app(grpc, pat)
    stranger = new_id()
    stranger_pat = server.create_user(stranger)
    stranger_app, _ = new_app(grpc, stranger_pat)
    narrow, narrow_id = _new_key(grpc, pat, ["Apps_Get", "Workflows_Get"])
    app_key_id = _public_id(grpc, pat, app_key)
    anonymous = _stored(server, "")  # requests with no credential to attribute them to

    # gRPC, the official stub.
    for _ in range(3):
        assert _get_app(grpc, narrow, "me", app_id) == codes.SUCCESS
    for _ in range(2):
        listed = grpc.stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=me()), metadata=grpc.auth(narrow)
        )
        assert listed.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert _get_app(grpc, narrow, stranger, stranger_app) == codes.CONN_DOES_NOT_EXIST
    assert _get_app(grpc, app_key, "me", app_id) == codes.SUCCESS
    assert _get_app(grpc, app_key, owner, app_id) == codes.SUCCESS
    assert _get_app(grpc, app_key, stranger, stranger_app) == codes.CONN_KEY_INVALID
    assert _get_app(grpc, GARBAGE, "me", app_id) == codes.CONN_KEY_INVALID  # no credential
    # REST, requests.
    for _ in range(2):
        assert _rest_status(server, f"/v2/users/me/apps/{app_id}", narrow) == codes.SUCCESS
    assert _rest_status(server, f"/v2/users/{stranger}/apps/{stranger_app}", narrow) == (
        codes.CONN_DOES_NOT_EXIST
    )
    missing = _rest_status(server, "/v2/users/me/apps/no-such-app", narrow)
    assert missing == codes.CONN_DOES_NOT_EXIST  # authorized, then not found: "failed"
    assert _rest_status(server, "/v2/users/me/keys", narrow) == codes.CONN_INSUFFICIENT_SCOPES
    assert _rest_status(server, "/v2/users/me/apps", GARBAGE) == codes.CONN_KEY_INVALID

    expected = {
        ("GetApp", "allowed"): 5,
        ("GetApp", "not_visible"): 2,
        ("GetApp", "failed"): 1,
        ("ListKeys", "insufficient_scopes"): 3,
    }
    assert _wait_for(server, narrow_id, expected) == expected
    expected_key = {("GetApp", "allowed"): 2, ("GetApp", "not_visible"): 1}
    assert _wait_for(server, app_key_id, expected_key) == expected_key
    # The garbage secrets: one refused in dispatch (gRPC), one at the REST gate, both
    # counted under no credential.
    for method in ("GetApp", "ListApps"):
        anonymous[(method, "invalid_credential")] = (
            anonymous.get((method, "invalid_credential"), 0) + 1
        )
    assert _wait_for(server, "", anonymous) == anonymous

    # The key's route, read with the owner's PAT (its own reads are counted after).
    status, body = _get(server, f"/scopegate/v1/users/me/keys/{narrow_id}/usage", pat)
    assert status == 200, body
    usage = body["usage"]
    assert usage["key_id"] == narrow_id
    assert usage["total"] == 11
    assert usage["outcomes"] == {
        "allowed": 5,
        "not_visible": 2,
        "failed": 1,
        "insufficient_scopes": 3,
    }
    assert {m["method"]: m["outcomes"] for m in usage["methods"]} == {
        "GetApp": {"allowed": 5, "not_visible": 2, "failed": 1},
        "ListKeys": {"insufficient_scopes": 3},
    }
    assert [m["method"] for m in usage["methods"]] == ["GetApp", "ListKeys"]
    assert sum(entry["total"] for entry in usage["series"]) == 11
    assert usage["addresses"] == [{"address": "127.0.0.1", "count": 11}]
    # Hour by hour: the same total in this hour's bucket (or the last two, at a turn).
    status, hourly = _get(
        server, f"/scopegate/v1/users/me/keys/{narrow_id}/usage", pat, granularity="hour"
    )
    assert sum(entry["total"] for entry in hourly["usage"]["series"]) == 11

    # The app's route: by credential; the owner sees every credential on the app.
    status, body = _get(server, f"/scopegate/v1/users/me/apps/{app_id}/usage", pat)
    assert status == 200, body
    usage = body["usage"]
    assert usage["credentials_shown"] == "all"
    assert {c["credential_id"]: c["outcomes"] for c in usage["credentials"]} == {
        narrow_id: {"allowed": 5},
        app_key_id: {"allowed": 2},
    }
    assert {c["user_id"] for c in usage["credentials"]} == {owner}
    assert usage["methods"] == [{"method": "GetApp", "total": 7, "outcomes": {"allowed": 7}}]

    # The stranger's app: the refused attempts (two of the PAT's, one of the API key's) are
    # counted, not named to its owner.
    status, body = _get(server, f"/scopegate/v1/users/me/apps/{stranger_app}/usage", stranger_pat)
    assert status == 200, body
    assert body["usage"]["credentials"] == [
        {"credential_id": "", "user_id": "", "total": 3, "outcomes": {"not_visible": 3}}
    ]
    assert body["usage"]["addresses"] == []

    # The CLI reads the same counts from the database, with the owner's read of the app's
    # usage (a GetApp on it) once written.
    owner_key = _public_id(grpc, pat, pat)
    deadline = time.monotonic() + 10
    while _stored(server, owner_key).get(("GetApp", "allowed")) != 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    shown = server.cli("keys", "usage", narrow_id, "--user", owner, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["outcomes"]["insufficient_scopes"] == 3
    shown = server.cli("apps", "usage", app_id, "--user", owner, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["total"] == 8
    text = server.cli("apps", "usage", app_id, "--user", owner)
    assert text.returncode == 0 and narrow_id in text.stdout and "GetApp" in text.stdout


def test_usage_routes_answer_bad_queries_with_a_status_a_person_can_act_on(server):
    owner = new_id()
    pat = server.create_user(owner)
    key_id = _public_id(_grpc(server), pat, pat)
    path = f"/scopegate/v1/users/me/keys/{key_id}/usage"
    for params, words in (
        ({"granularity": "week"}, "granularity"),
        ({"from": "yesterday"}, "ISO 8601"),
        ({"from": "2024-06-02", "to": "2024-06-01"}, "before"),
        ({"from": "2024-01-01", "granularity": "hour"}, "31 days"),
    ):
        status, body = _get(server, path, pat, **params)
        assert status == 400, body
        assert body["status"]["code"] == codes.CONN_INVALID_REQUEST
        assert words in body["status"]["details"]
    status, body = _get(server, path, pat, **{"from": "2024-06-01", "to": "2024-06-02"})
    assert status == 200 and body["usage"]["from"] == "2024-06-01T00:00:00Z"
    assert body["usage"]["to"] == "2024-06-03T00:00:00Z"  # a date includes its day


def test_an_expired_keys_attempts_count_under_it(server):
    grpc = _grpc(server)
    pat = server.create_user(new_id())
    key = resources_pb2.Key(type="personal_access_token", description="soon", scopes=["All"])
    key.expires_at.FromSeconds(int(time.time()) + 3)
    made = ok(
        grpc.stub.PostKeys(
            service_pb2.PostKeysRequest(user_app_id=me(), keys=[key]), metadata=grpc.auth(pat)
        )
    )
    secret = made.keys[0].id
    key_id = _public_id(grpc, pat, secret)
    assert _rest_status(server, "/v2/users/me/apps", secret) == codes.SUCCESS
    time.sleep(max(0.0, made.keys[0].expires_at.seconds - time.time()) + 0.2)
    listed = grpc.stub.ListApps(
        service_pb2.ListAppsRequest(user_app_id=me()), metadata=grpc.auth(secret)
    )
    assert listed.status.code == codes.CONN_KEY_INVALID
    assert _rest_status(server, "/v2/users/me/apps", secret) == codes.CONN_KEY_INVALID
    expected = {("ListApps", "allowed"): 1, ("ListApps", "invalid_credential"): 2}
    assert _wait_for(server, key_id, expected) == expected
    status, body = _get(server, f"/scopegate/v1/users/me/keys/{key_id}/usage", pat)
    assert status == 200, body
    assert body["usage"]["outcomes"] == {"allowed": 1, "invalid_credential": 2}
    assert body["usage"]["addresses"] == [{"address": "127.0.0.1", "count": 3}]


def _refusal(server, path: str, secret: str) -> tuple[int, int, str]:
    status, body = _get(server, path, secret)
    return status, body["status"]["code"], body["status"]["description"]


def test_who_may_read_usage(server):
    grpc = _grpc(server)
    owner = new_id()
    pat = server.create_user(owner)
    app_id, guest_id, guest_pat, _ = add_collaborator(server, grpc, pat, ["All"])
    other_app, other_guest, other_guest_pat, _ = add_collaborator(server, grpc, pat, ["All"])
    _, app_key = new_app(grpc, pat)  # another app's key
    own_app_key = (
        ok(
            grpc.stub.PostKeys(
                service_pb2.PostKeysRequest(
                    user_app_id=me(),
                    keys=[
                        resources_pb2.Key(
                            type="app_specific_key",
                            description="own",
                            scopes=["All"],
                            apps=[resources_pb2.App(id=app_id)],
                        )
                    ],
                ),
                metadata=grpc.auth(pat),
            )
        )
        .keys[0]
        .id
    )
    stranger_pat = server.create_user(new_id())
    owner_key = _public_id(grpc, pat, pat)
    guest_key = _public_id(grpc, guest_pat, guest_pat)
    own_app_key_id = _public_id(grpc, pat, own_app_key)

    # Traffic on the app from the owner, the collaborator and the app's own key.
    for secret in (pat, guest_pat, guest_pat, own_app_key):
        assert _get_app(grpc, secret, owner, app_id) == codes.SUCCESS
    guest_calls = {("GetApp", "allowed"): 2, ("GetKey", "allowed"): 1}  # GetKey: its id
    assert _wait_for(server, guest_key, guest_calls) == guest_calls
    assert _wait_for(server, own_app_key_id, {("GetApp", "allowed"): 1}) == {
        ("GetApp", "allowed"): 1
    }

    app_path = f"/scopegate/v1/users/{owner}/apps/{app_id}/usage"
    key_path = f"/scopegate/v1/users/{owner}/keys/{owner_key}/usage"

    # The owner: every credential on the app, and the owner's keys.
    status, body = _get(server, app_path, pat)
    assert status == 200 and body["usage"]["credentials_shown"] == "all"
    seen = {c["credential_id"] for c in body["usage"]["credentials"]}
    assert {owner_key, guest_key, own_app_key_id} <= seen
    assert _get(server, key_path, pat)[0] == 200

    # The collaborator: only their own credential's counts on the app.
    status, body = _get(server, app_path, guest_pat)
    assert status == 200 and body["usage"]["credentials_shown"] == "own"
    assert {c["credential_id"] for c in body["usage"]["credentials"]} == {guest_key}
    assert {c["user_id"] for c in body["usage"]["credentials"]} == {guest_id}
    assert body["usage"]["outcomes"] == {"allowed": 2}

    # The app's own API key: only its own counts.
    status, body = _get(server, app_path, own_app_key)
    assert status == 200 and body["usage"]["credentials_shown"] == "own"
    assert {c["credential_id"] for c in body["usage"]["credentials"]} == {own_app_key_id}

    # Unknown and forbidden look alike: a stranger, a collaborator granted All on another
    # app of the owner, and the collaborator reading the owner's key, get what an unknown
    # app (key) gets.
    unknown_app = _refusal(server, f"/scopegate/v1/users/{owner}/apps/no-such-app/usage", pat)
    assert unknown_app[:2] == (404, codes.CONN_DOES_NOT_EXIST)
    unknown_key = _refusal(server, f"/scopegate/v1/users/{owner}/keys/{'0' * 32}/usage", pat)
    assert unknown_key[:2] == (404, codes.CONN_DOES_NOT_EXIST)
    for secret in (stranger_pat, other_guest_pat):
        assert _refusal(server, app_path, secret) == unknown_app
        assert _refusal(server, key_path, secret) == unknown_key
    assert _refusal(server, key_path, guest_pat) == unknown_key
    # The collaborator's own key, named under the owner's account, is not the owner's.
    assert _refusal(server, f"/scopegate/v1/users/{owner}/keys/{guest_key}/usage", pat) == (
        unknown_key
    )
    # Another app's API key is refused as for any call naming an app not its own, and an
    # API key reads no key's usage (GetKey takes a PAT).
    refused = _refusal(server, app_path, app_key)
    assert refused[:2] == (401, codes.CONN_KEY_INVALID)
    assert _refusal(server, f"/scopegate/v1/users/{owner}/apps/no-such-app/usage", app_key) == (
        refused
    )
    assert _refusal(server, key_path, own_app_key)[1] in (
        codes.CONN_INSUFFICIENT_SCOPES,
        codes.CONN_KEY_INVALID,
    )
    # No credential, or garbage: refused before anything is read.
    assert _refusal(server, app_path, GARBAGE)[:2] == (401, codes.CONN_KEY_INVALID)
    assert other_app and other_guest  # the other app exists, with its own collaborator


@pytest.fixture(params=BACKENDS)
def shared_database(request, tmp_path):
    return tmp_path / "shared", _database_url(request, "usage_pair")


def test_two_instances_and_a_restart_each_add_their_own_counts(shared_database):
    data_dir, url = shared_database
    env = {**SERVER_ENV, **FLUSH}
    first = ServerProcess(data_dir, url, extra_env=env).start()
    second = ServerProcess(data_dir, url, extra_env=env).start()
    try:
        owner = new_id()
        pat = first.create_user(owner)
        grpc_first, grpc_second = _grpc(first), _grpc(second)
        app_id, _ = new_app(grpc_first, pat)
        narrow, narrow_id = _new_key(grpc_first, pat, ["Apps_Get", "Workflows_Get"])

        def calls(server, client, rounds: int) -> None:
            for _ in range(rounds):
                assert _get_app(client, narrow, "me", app_id) == codes.SUCCESS
                assert _rest_status(server, "/v2/users/me/keys", narrow) == (
                    codes.CONN_INSUFFICIENT_SCOPES
                )

        # Both instances at once, over several of their write intervals.
        workers = [
            threading.Thread(target=calls, args=(first, grpc_first, 40)),
            threading.Thread(target=calls, args=(second, grpc_second, 30)),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        expected = {("GetApp", "allowed"): 70, ("ListKeys", "insufficient_scopes"): 70}
        assert _wait_for(first, narrow_id, expected) == expected
    finally:
        assert first.stop() == 0 and second.stop() == 0

    # A restart (with writes every minute: only the stop writes) adds to what was stored.
    slow = {**SERVER_ENV, "SCOPEGATE_LAST_USED_WRITE_SECONDS": "60"}
    again = ServerProcess(data_dir, url, extra_env=slow).start()
    try:
        calls(again, _grpc(again), 5)
        time.sleep(0.5)
        assert _stored(again, narrow_id) == expected  # nothing written yet
    finally:
        assert again.stop() == 0
    after = {("GetApp", "allowed"): 75, ("ListKeys", "insufficient_scopes"): 75}
    assert _stored(again, narrow_id) == after
