"""Per-key rate limits, usage quotas and address allowlists on a real server, both
transports (README, Limits): the answers (codes, HTTP statuses, RateLimit fields), that
a refused request consumes nothing, the REST extension's authorization, the CLI."""

from __future__ import annotations

import json

import pytest
import requests
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import add_collaborator
from tests.support.apps import new_app
from tests.support.clients import Client, make_stub, new_id
from tests.support.limits import call, get_limits, new_key, put_limits, remaining, set_limits
from tests.support.servers import BACKENDS, start_server

TRANSPORTS = ["grpc", "rest"]


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    process = start_server(request, tmp_path_factory, request.param)
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture
def owner(server):
    """(user id, its default PAT, a second PAT's secret and public id): the second is the
    one limited, the first sets its limits."""
    user_id = new_id()
    pat = server.create_user(user_id)
    secret, key_id = new_key(server, user_id)
    return user_id, pat, secret, key_id


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_rate_limit_throttles_with_the_window_named(server, owner, transport):
    set_limits(server, owner, {"rate_limits": ["3/m", "100/h"]})
    secret = owner[2]
    for left in (2, 1, 0):
        answer = call(server, transport, secret)
        assert answer.code == codes.SUCCESS, answer.details
        assert answer.headers["ratelimit-policy"] == (
            '"3-per-60s";q=3;w=60, "100-per-3600s";q=100;w=3600'
        )
        assert answer.headers["ratelimit"].startswith(f'"3-per-60s";r={left};t=')
    refused = call(server, transport, secret)
    assert refused.code == codes.CONN_THROTTLED
    assert "3 requests per minute" in refused.details
    assert owner[3] not in refused.details and secret not in refused.details
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    if transport == "rest":
        assert refused.http_status == 429
    else:
        assert "retry-after" in refused.trailing and "ratelimit" in refused.trailing


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_usage_quota_is_spent_exactly(server, owner, transport):
    set_limits(server, owner, {"usage": {"remaining": 3}})
    for left in (2, 1, 0):
        answer = call(server, transport, owner[2])
        assert answer.code == codes.SUCCESS, answer.details
        assert f'"quota";r={left}' in answer.headers["ratelimit"]
    refused = call(server, transport, owner[2])
    assert refused.code == codes.CONN_EXCEEDS_LIMITS
    if transport == "rest":
        assert refused.http_status == 429
    assert remaining(server, owner) == 0
    # Another credential of the same user is not limited by this key's quota.
    assert call(server, transport, owner[1]).code == codes.SUCCESS


def test_an_exhausted_quota_with_a_refill_says_when(server, owner):
    # Set to 0 today, refilled to 5 from the next UTC midnight: refused until then.
    usage = {"remaining": 0, "refill": {"interval": "daily", "amount": 5}}
    set_limits(server, owner, {"usage": usage})
    for transport in TRANSPORTS:
        answer = call(server, transport, owner[2])
        assert answer.code == codes.CONN_EXCEEDS_LIMITS
        assert "refilled in" in answer.details
        assert 1 <= int(answer.headers["retry-after"]) <= 86401
        assert answer.headers["ratelimit"].startswith('"quota";r=0;t=')


def test_refused_requests_consume_nothing(server, owner):
    set_limits(server, owner, {"rate_limits": ["2/m"], "usage": {"remaining": 10}})
    secret = owner[2]
    stranger = new_id()
    server.create_user(stranger)
    # Refused by authorization (another user's account): no quota, no rate spent.
    for _ in range(4):
        assert call(server, "rest", secret, user_id=stranger).code == codes.CONN_DOES_NOT_EXIST
    assert remaining(server, owner) == 10
    assert call(server, "rest", secret).code == codes.SUCCESS
    assert call(server, "grpc", secret).code == codes.SUCCESS
    # Refused by the rate: the quota is not spent either.
    for _ in range(3):
        assert call(server, "rest", secret).code == codes.CONN_THROTTLED
    assert call(server, "grpc", secret).code == codes.CONN_THROTTLED
    assert remaining(server, owner) == 8


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_address_allowlist(server, owner, transport):
    set_limits(server, owner, {"allowed_ips": ["203.0.113.0/24", "2001:db8::/32"]})
    refused = call(server, transport, owner[2])
    assert refused.code == codes.CONN_KEY_INVALID
    assert "address are not allowed for this key" in refused.details
    assert "203.0.113" not in refused.details
    if transport == "rest":
        assert refused.http_status == 403
    # X-Forwarded-For from a peer that is no trusted proxy is not believed.
    assert call(server, transport, owner[2], forwarded="203.0.113.9").code == codes.CONN_KEY_INVALID
    set_limits(server, owner, {"allowed_ips": ["127.0.0.0/8"]})
    assert call(server, transport, owner[2]).code == codes.SUCCESS


def test_an_unlimited_credential_gets_no_fields(server, owner):
    answer = call(server, "rest", owner[1])
    assert answer.code == codes.SUCCESS
    assert "ratelimit" not in answer.headers and "ratelimit-policy" not in answer.headers


def test_limits_document_round_trips_and_bad_input_is_explained(server, owner):
    user_id, pat, _, key_id = owner
    body = {
        "rate_limits": ["10/s", "1000/h"],
        "usage": {"remaining": 5000, "refill": {"interval": "monthly", "amount": 5000}},
        "allowed_ips": ["203.0.113.0/24"],
        "methods": ["PostModelOutputs"],
    }
    assert set_limits(server, owner, body) == body
    assert get_limits(server, pat, user_id, key_id).json()["limits"] == body
    for bad, words in (
        ({"rate_limits": ["ten per second"]}, "N/s"),
        ({"allowed_ips": ["300.1.1.1/8"]}, "CIDR"),
        ({"usage": {"remaining": -1}}, "whole number"),
        ({"surprise": 1}, "Unknown fields"),
    ):
        reply = put_limits(server, pat, user_id, key_id, bad)
        assert reply.status_code == 400, reply.text
        assert words in reply.json()["status"]["details"]
    # Nothing was changed by the refused ones.
    assert get_limits(server, pat, user_id, key_id).json()["limits"] == body


def test_outsiders_cannot_read_or_set_a_keys_limits(server, owner):
    user_id, pat, _, key_id = owner
    set_limits(server, owner, {"usage": {"remaining": 3}})
    # A stranger, naming the owner's account or their own.
    stranger = new_id()
    stranger_pat = server.create_user(stranger)
    for who, account in ((stranger_pat, user_id), (stranger_pat, stranger)):
        for reply in (
            get_limits(server, who, account, key_id),
            put_limits(server, who, account, key_id, {"usage": {"remaining": 10**6}}),
        ):
            assert reply.status_code == 404, reply.text
            assert reply.json()["status"]["code"] == codes.CONN_DOES_NOT_EXIST
    # A collaborator granted All on an app of the owner: the grant opens the app, never the
    # account its keys belong to.
    client = Client("grpc", make_stub(server, "grpc"))
    _, _, guest_pat, _ = add_collaborator(server, client, pat, ["All"])
    # Another app's API key (of the owner's own app, with scope All): keys take a PAT.
    _, app_key = new_app(client, pat)
    for who, code in ((guest_pat, codes.CONN_DOES_NOT_EXIST), (app_key, None)):
        for reply in (
            get_limits(server, who, user_id, key_id),
            put_limits(server, who, user_id, key_id, {"usage": {"remaining": 10**6}}),
        ):
            assert reply.status_code in (401, 403, 404), reply.text
            assert "limits" not in reply.json()
            if code is not None:
                assert reply.json()["status"]["code"] == code
    # The owner naming another user's key under their own account: as if it did not exist.
    _, other_key = new_key(server, stranger)
    assert get_limits(server, pat, user_id, other_key).status_code == 404
    assert get_limits(server, pat, "me", other_key).status_code == 404
    assert remaining(server, owner) == 3
    # The owner's quota is not spent by anyone else's requests.
    for _ in range(5):
        call(server, "rest", stranger_pat, user_id=user_id)
    assert remaining(server, owner) == 3


def test_cli_sets_and_lists_limits(server):
    user_id = new_id()
    server.create_user(user_id)
    created = server.cli(
        "keys", "create", "--user", user_id, "--rate-limit", "5/s", "--rate-limit", "100/h",
        "--usage-limit", "50", "--usage-refill", "daily:50", "--allow-ip", "10.0.0.0/8",
        "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["id"]
    listed = server.cli("keys", "list", "--user", user_id, "--json")
    assert listed.returncode == 0, listed.stderr
    limits = {k["id"]: k["limits"] for k in json.loads(listed.stdout)["keys"]}
    assert limits[key_id] == {
        "rate_limits": ["5/s", "100/h"],
        "usage": {"remaining": 50, "refill": {"interval": "daily", "amount": 50}},
        "allowed_ips": ["10.0.0.0/8"],
        "methods": [],
    }
    patched = server.cli("keys", "patch", key_id, "--user", user_id, "--no-allow-ip", "--json")
    assert patched.returncode == 0, patched.stderr
    people = server.cli("keys", "list", "--user", user_id)
    assert f"Limits of {key_id}: 5/s, 100/h; 50 left (daily:50)" in people.stdout
    bad = server.cli("keys", "patch", key_id, "--user", user_id, "--rate-limit", "5 per s")
    assert bad.returncode == 2 and "N/s" in bad.stderr
    rates = server.cli("users", "limits", user_id, "--rate-limit", "1/m", "--json")
    assert rates.returncode == 0, rates.stderr
    assert json.loads(rates.stdout)["rate_limits"] == ["1/m"]


def test_user_rates_are_shared_by_all_credentials(server, owner):
    user_id, pat, secret, _ = owner
    done = server.cli("users", "limits", user_id, "--rate-limit", "2/m")
    assert done.returncode == 0, done.stderr
    # The CLI's change reaches the running server through the change log.
    import time

    time.sleep(1.0)
    assert call(server, "rest", pat).code == codes.SUCCESS
    assert call(server, "grpc", secret).code == codes.SUCCESS
    refused = call(server, "rest", pat)
    assert refused.code == codes.CONN_THROTTLED
    assert "2 requests per minute" in refused.details
    server.cli("users", "limits", user_id, "--no-rate-limit")
    time.sleep(1.0)
    assert call(server, "rest", pat).code == codes.SUCCESS


def test_list_and_get_keys_show_limits_with_the_remaining_count(server, owner):
    _, pat, secret, key_id = owner
    set_limits(server, owner, {"rate_limits": ["5/s"], "usage": {"remaining": 7}})
    assert call(server, "rest", secret).code == codes.SUCCESS
    headers = {"authorization": f"Key {pat}"}
    listed = requests.get(f"{server.http_url}/v2/users/me/keys", headers=headers, timeout=30)
    keys = {k["id"]: k for k in listed.json()["keys"]}
    assert keys[key_id]["limits"]["rate_limits"] == ["5/s"]
    assert keys[key_id]["limits"]["usage"] == {"remaining": 6}
    assert all(k["limits"] is None for i, k in keys.items() if i != key_id)
    got = requests.get(f"{server.http_url}/v2/users/me/keys/{key_id}", headers=headers, timeout=30)
    assert got.json()["key"]["limits"]["usage"] == {"remaining": 6}


def test_limits_may_count_only_named_methods(server, owner):
    set_limits(server, owner, {"rate_limits": ["1/m"], "methods": ["List*"]})
    secret = owner[2]
    # GetUser is not among the methods counted: never throttled, no fields.
    for _ in range(3):
        answer = call(server, "rest", secret)
        assert answer.code == codes.SUCCESS
        assert "ratelimit" not in answer.headers
    headers = {"authorization": f"Key {secret}"}
    apps = [
        requests.get(f"{server.http_url}/v2/users/me/apps", headers=headers, timeout=30)
        for _ in range(2)
    ]
    assert [a.json()["status"]["code"] for a in apps] == [codes.SUCCESS, codes.CONN_THROTTLED]
