"""HTTP forward auth (issue 15): `/scopegate/v1/authorize`, asked as nginx (`X-Original-*`),
Traefik and Caddy (`X-Forwarded-*`) ask it, on both databases. The proxies themselves are
started in tests/test_proxies.py.

From the README: allowed, 200 with the identity headers; refused, 401 for a missing or
invalid credential and 403 for anything else, with the Clarifai JSON body.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import PASSWORD, add_collaborator, login
from tests.support.apps import new_app
from tests.support.clients import Client, make_stub, new_id

AUTHORIZE = "/scopegate/v1/authorize"


@pytest.fixture(scope="module")
def grpc_client(server) -> Client:
    return Client("grpc", make_stub(server, "grpc"))


@pytest.fixture(scope="module")
def owner(server, grpc_client):
    user_id = new_id()
    pat = server.create_user(user_id)
    app_a, key_a = new_app(grpc_client, pat)
    app_b, _ = new_app(grpc_client, pat)
    return {"id": user_id, "pat": pat, "app": app_a, "key": key_a, "other_app": app_b}


def ask(
    server,
    method: str,
    uri: str,
    secret: str | None = None,
    *,
    style="nginx",
    verb="GET",
    headers=None,
) -> requests.Response:
    sent = {}
    if style == "nginx":
        sent.update({"X-Original-Method": method, "X-Original-URI": uri})
    else:  # Traefik, Caddy
        sent.update({"X-Forwarded-Method": method, "X-Forwarded-Uri": uri})
    if secret is not None:
        sent["Authorization"] = f"Key {secret}"
    sent.update(headers or {})
    return requests.request(verb, server.http_url + AUTHORIZE, headers=sent, timeout=30)


def refused(reply: requests.Response) -> tuple[int, int]:
    assert reply.headers["content-type"] == "application/json"
    return reply.status_code, reply.json()["status"]["code"]


@pytest.mark.parametrize("style", ["nginx", "traefik"])
def test_allowed_with_identity_headers(server, owner, style):
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs?per_page=2"
    for verb in ("GET", "POST", "HEAD"):  # any verb asks
        reply = ask(server, "GET", path, owner["pat"], style=style, verb=verb)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-scopegate-caller"] == owner["id"]
        assert reply.headers["x-scopegate-credential-type"] == "personal_access_token"
        assert reply.headers["x-scopegate-relation"] == "owner"
        assert reply.headers["x-scopegate-scopes"] == "All"
        assert reply.headers["x-request-id"].startswith("sg-")
        assert owner["pat"] not in str(reply.headers)


def test_missing_or_invalid_credential_is_401(server, owner):
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs"
    assert refused(ask(server, "GET", path)) == (401, codes.CONN_INVALID_REQUEST)
    assert refused(ask(server, "GET", path, "sgp_garbage")) == (401, codes.CONN_KEY_INVALID)
    # An API key naming another app is an invalid key/app pair: 401 too.
    other = f"/v2/users/{owner['id']}/apps/{owner['other_app']}/inputs"
    assert refused(ask(server, "GET", other, owner["key"])) == (401, codes.CONN_KEY_INVALID)


def test_everything_else_is_403(server, owner, grpc_client):
    stranger = server.create_user(new_id())
    app_path = f"/v2/users/{owner['id']}/apps/{owner['app']}"
    # Not visible (404 on a direct call): 403 here, nginx's only other refusal.
    assert refused(ask(server, "GET", app_path, stranger)) == (403, codes.CONN_DOES_NOT_EXIST)
    _, _, guest_pat, _ = add_collaborator(server, grpc_client, owner["pat"], ["All"])
    assert refused(ask(server, "GET", app_path + "/inputs", guest_pat)) == (
        403,
        codes.CONN_DOES_NOT_EXIST,
    )
    assert refused(ask(server, "GET", "/v2/no/such/thing", owner["pat"])) == (
        403,
        codes.CONN_DOES_NOT_EXIST,
    )
    assert refused(ask(server, "PUT", "/v2/users/me/apps", owner["pat"])) == (
        403,
        codes.CONN_METHOD_NOT_ALLOWED,
    )
    assert refused(ask(server, "GET", "/v2/users/me/apps?per_page=x", owner["pat"])) == (
        403,
        codes.CONN_BAD_REQUEST_FORMAT,
    )


def test_the_request_must_be_named_once(server, owner):
    path = "/v2/users/me/apps"
    reply = requests.get(
        server.http_url + AUTHORIZE, headers={"Authorization": f"Key {owner['pat']}"}, timeout=30
    )
    assert refused(reply) == (403, codes.CONN_INVALID_REQUEST)
    # A proxy sets one form and passes the other on from the client: they must agree.
    other = f"/v2/users/{owner['id']}/apps/{owner['other_app']}/inputs"
    reply = ask(
        server,
        "GET",
        other,
        owner["key"],
        headers={"X-Forwarded-Uri": f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs"},
    )
    assert refused(reply) == (403, codes.CONN_INVALID_REQUEST)
    reply = ask(server, "GET", path, owner["pat"], headers={"X-Forwarded-Method": "DELETE"})
    assert refused(reply) == (403, codes.CONN_INVALID_REQUEST)
    # Agreeing forms are fine.
    reply = ask(server, "GET", path, owner["pat"], headers={"X-Forwarded-Uri": path})
    assert reply.status_code == 200


def test_ids_only_in_the_body_are_decided_as_none(server, owner):
    """nginx's subrequest carries no body: `POST /v2/inputs` is decided as naming no ids,
    so an API key acts on its own app and a PAT on its own account."""
    reply = ask(server, "POST", "/v2/inputs", owner["key"])
    assert reply.status_code == 200
    assert reply.headers["x-scopegate-credential-type"] == "app_specific_key"


def test_decisions_appear_in_the_access_log(server, owner):
    reply = ask(server, "GET", f"/v2/users/{owner['id']}/apps/{owner['app']}", owner["pat"])
    request_id = reply.headers["x-request-id"]
    deadline = time.monotonic() + 10
    found = []
    while not found and time.monotonic() < deadline:
        found = [
            json.loads(line)
            for line in server.log().splitlines()
            if "scopegate.access" in line and request_id in line
        ]
        time.sleep(0.1)
    (entry,) = found
    assert (entry["transport"], entry["method"], entry["user_id"]) == (
        "forward_auth",
        "GetApp",
        owner["id"],
    )


def test_dot_segments_are_refused(server, owner):
    base = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs"
    uri = f"{base}/../../{owner['other_app']}/inputs"
    assert refused(ask(server, "GET", uri, owner["key"])) == (403, codes.CONN_BAD_REQUEST_FORMAT)


def test_session_token_is_a_credential_too(server):
    user_id = new_id()
    server.create_user(user_id, password=PASSWORD)
    _, body = login(server, f"{user_id}@example.com")
    reply = ask(
        server,
        "GET",
        "/v2/users/me/apps",
        headers={"X-Clarifai-Session-Token": body["session_token"]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-scopegate-caller"] == user_id
    assert reply.headers["x-scopegate-credential-type"] == "session"
    assert body["session_token"] not in str(reply.headers)
    forged = ask(server, "GET", "/v2/users/me/apps", headers={"X-Clarifai-Session-Token": "x"})
    assert forged.status_code == 401


def test_client_request_id_prefix(server, owner):
    headers = {"X-Clarifai-Request-Id-Prefix": "python-json-12.5"}
    reply = ask(server, "GET", "/v2/users/me/apps", owner["pat"], headers=headers)
    assert reply.headers["x-request-id"].startswith("python-json-12.5-sg-")
