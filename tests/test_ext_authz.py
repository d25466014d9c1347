"""Envoy ext_authz (issue 15): `envoy.service.auth.v3.Authorization/Check` on the gRPC port,
called with the `xds-protos` client stub the way Envoy calls it (header names lower-cased,
pseudo-headers included, the path with its query, the body as `raw_body`), on both
databases and on one port.

Expectations come from the README: an allowed request passes with the identity headers set
and `authorization` removed; a refused one gets the HTTP status of the README's table and
the Clarifai JSON body a direct call would get.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import grpc
import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from tests.support.api import add_collaborator, ok
from tests.support.apps import new_app
from tests.support.clients import Client, make_stub, new_id
from tests.support.servers import start_server

GRPC_OK, PERMISSION_DENIED, UNAUTHENTICATED = 0, 7, 16


def frame(message, *, compressed: bool = False) -> bytes:
    payload = message.SerializeToString()
    if compressed:
        payload = gzip.compress(payload)
    return bytes([int(compressed)]) + len(payload).to_bytes(4, "big") + payload


class Envoy:
    """Asks Check as Envoy's ext_authz filter does for one downstream request."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = external_auth_pb2_grpc.AuthorizationStub(self.channel)

    def check(
        self,
        method: str,
        path: str,
        secret: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        grpc_style: bool = False,
    ) -> external_auth_pb2.CheckResponse:
        request = external_auth_pb2.CheckRequest()
        request.attributes.source.address.socket_address.address = "203.0.113.9"
        request.attributes.source.address.socket_address.port_value = 40000
        http = request.attributes.request.http
        http.id = "1234567890"
        http.method = method
        http.path = path  # with its query, as in the request line
        http.host = "api.example.com"
        http.scheme = "http"
        http.protocol = "HTTP/2" if grpc_style else "HTTP/1.1"
        sent = {
            ":authority": "api.example.com",
            ":method": method,
            ":path": path,
            ":scheme": "http",
            "x-forwarded-proto": "http",
            "x-request-id": "0d3f2c1e-envoy",
            "user-agent": "test-envoy-client",
        }
        if grpc_style:
            sent.update({"content-type": "application/grpc", "te": "trailers"})
        elif body is not None:
            sent["content-type"] = "application/json"
        if secret is not None:
            sent["authorization"] = f"Key {secret}"
        for name, value in (headers or {}).items():
            sent[name.lower()] = value  # Envoy lower-cases every header name
        http.headers.update(sent)
        if body is not None:
            http.raw_body = body  # with_request_body + pack_as_bytes
            http.size = len(body)
        return self.stub.Check(request, timeout=30)


def identity(response) -> dict[str, str]:
    assert response.status.code == GRPC_OK, response
    assert response.HasField("ok_response")
    return {option.header.key: option.header.value for option in response.ok_response.headers}


def refusal(response) -> tuple[int, dict]:
    """(HTTP status, JSON body) of a denied check."""
    assert response.status.code in (PERMISSION_DENIED, UNAUTHENTICATED), response
    denied = response.denied_response
    content_types = [h.header.value for h in denied.headers if h.header.key == "content-type"]
    assert content_types == ["application/json"]
    return denied.status.code, json.loads(denied.body)


@pytest.fixture(scope="module")
def grpc_client(server) -> Client:
    return Client("grpc", make_stub(server, "grpc"))


@pytest.fixture(scope="module")
def envoy(server) -> Envoy:
    return Envoy(server.grpc_address)


@pytest.fixture(scope="module")
def owner(server, grpc_client):
    """An owner with two private apps (each with its API key) and a PUBLIC one."""
    user_id = new_id()
    pat = server.create_user(user_id)
    app_a, key_a = new_app(grpc_client, pat)
    app_b, key_b = new_app(grpc_client, pat)
    public_app, _ = new_app(grpc_client, pat, public=True)
    return {
        "id": user_id,
        "pat": pat,
        "app": app_a,
        "key": key_a,
        "other_app": app_b,
        "other_key": key_b,
        "public_app": public_app,
    }


def test_owner_allowed_with_identity_headers_and_secrets_removed(envoy, owner):
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}"
    response = envoy.check(
        "GET",
        path,
        owner["pat"],
        headers={
            "X-Scopegate-Caller": "admin",  # spoofed: overwritten
            "x-scopegate-assertion": "forged",  # spoofed, not set by scopegate: removed
            "x-clarifai-session-token": "sgs_forged",
        },
    )
    headers = identity(response)
    assert headers["x-scopegate-caller"] == owner["id"]
    assert headers["x-scopegate-credential-type"] == "personal_access_token"
    assert headers["x-scopegate-credential"]  # its public id
    assert owner["pat"] not in headers["x-scopegate-credential"]
    assert headers["x-scopegate-relation"] == "owner"
    assert headers["x-scopegate-scopes"] == "All"  # the default PAT's
    assert headers["x-request-id"].startswith("sg-")
    assert {o.append_action for o in response.ok_response.headers} == {
        base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    }
    removed = set(response.ok_response.headers_to_remove)
    assert {"authorization", "x-clarifai-session-token", "x-scopegate-assertion"} <= removed
    assert not removed & set(headers)  # what is set is overwritten, not removed after


def test_path_with_query_is_decoded_like_rest(envoy, owner):
    headers = identity(envoy.check("GET", "/v2/users/me/apps?page=1&per_page=5", owner["pat"]))
    assert headers["x-scopegate-caller"] == owner["id"]
    status, body = refusal(envoy.check("GET", "/v2/users/me/apps?per_page=many", owner["pat"]))
    assert status == 400
    assert body["status"]["code"] == codes.CONN_BAD_REQUEST_FORMAT


def test_missing_and_unknown_credentials_are_401(envoy, owner):
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}"
    response = envoy.check("GET", path)
    assert response.status.code == UNAUTHENTICATED
    status, body = refusal(response)
    assert (status, body["status"]["code"]) == (401, codes.CONN_INVALID_REQUEST)
    assert body["status"]["req_id"].startswith("sg-")
    status, body = refusal(envoy.check("GET", path, "sgp_garbage"))
    assert (status, body["status"]["code"]) == (401, codes.CONN_KEY_INVALID)


def test_stranger_is_told_it_does_not_exist(server, envoy, owner):
    stranger = server.create_user(new_id())
    for app in (owner["app"], "no-such-app"):
        status, body = refusal(envoy.check("GET", f"/v2/users/{owner['id']}/apps/{app}", stranger))
        assert (status, body["status"]["code"]) == (404, codes.CONN_DOES_NOT_EXIST)
        assert body["status"]["description"] == "Resource does not exist"


def test_collaborator_on_another_app_of_the_owner_is_refused(server, envoy, owner, grpc_client):
    granted_app, guest_id, guest_pat, _ = add_collaborator(
        server, grpc_client, owner["pat"], ["All"]
    )
    on_grant = identity(
        envoy.check("GET", f"/v2/users/{owner['id']}/apps/{granted_app}/inputs", guest_pat)
    )
    assert on_grant["x-scopegate-caller"] == guest_id
    assert on_grant["x-scopegate-relation"] == "collaborator"
    for path in (
        f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs",
        f"/v2/users/{owner['id']}/apps/{owner['app']}",
    ):
        status, body = refusal(envoy.check("GET", path, guest_pat))
        assert (status, body["status"]["code"]) == (404, codes.CONN_DOES_NOT_EXIST)
    # The account is not the app: its keys are not the collaborator's to list.
    status, _ = refusal(envoy.check("GET", f"/v2/users/{owner['id']}/keys", guest_pat))
    assert status == 404


def test_api_key_of_another_app_and_uri_naming_another_app(envoy, owner):
    own = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs"
    headers = identity(envoy.check("GET", own, owner["key"]))
    assert headers["x-scopegate-credential-type"] == "app_specific_key"
    # Naming no ids: the key acts on its own app.
    identity(envoy.check("GET", "/v2/inputs", owner["key"]))
    for path in (
        f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs",  # the other app's key here
        f"/v2/users/{owner['id']}/apps/{owner['other_app']}/inputs?per_page=1",
    ):
        secret = owner["other_key"] if owner["app"] in path else owner["key"]
        status, body = refusal(envoy.check("GET", path, secret))
        assert (status, body["status"]["code"]) == (401, codes.CONN_KEY_INVALID)


def test_json_body_naming_another_app_is_seen(envoy, owner):
    """With with_request_body, a REST body's ids are read as REST reads them."""
    other = {"user_app_id": {"user_id": owner["id"], "app_id": owner["other_app"]}}
    status, body = refusal(
        envoy.check("POST", "/v2/inputs", owner["key"], body=json.dumps(other).encode())
    )
    assert (status, body["status"]["code"]) == (401, codes.CONN_KEY_INVALID)
    own = {"user_app_id": {"user_id": owner["id"], "app_id": owner["app"]}}
    identity(envoy.check("POST", "/v2/inputs", owner["key"], body=json.dumps(own).encode()))
    status, body = refusal(envoy.check("POST", "/v2/inputs", owner["key"], body=b"{not json"))
    assert (status, body["status"]["code"]) == (400, codes.CONN_BAD_REQUEST_FORMAT)


def test_grpc_style_path_reads_the_ids_from_the_frame(envoy, owner):
    path = "/clarifai.api.V2/ListInputs"

    def ids(app: str):
        ids = resources_pb2.UserAppIDSet(user_id=owner["id"], app_id=app)
        return service_pb2.ListInputsRequest(user_app_id=ids)

    allowed = identity(
        envoy.check("POST", path, owner["key"], body=frame(ids(owner["app"])), grpc_style=True)
    )
    assert allowed["x-scopegate-credential-type"] == "app_specific_key"
    status, body = refusal(
        envoy.check(
            "POST", path, owner["key"], body=frame(ids(owner["other_app"])), grpc_style=True
        )
    )
    assert (status, body["status"]["code"]) == (401, codes.CONN_KEY_INVALID)
    # gzip-compressed frames (grpc-encoding: gzip) are read too.
    status, _ = refusal(
        envoy.check(
            "POST",
            path,
            owner["key"],
            body=frame(ids(owner["other_app"]), compressed=True),
            headers={"grpc-encoding": "gzip"},
            grpc_style=True,
        )
    )
    assert status == 401
    # Without a body (no with_request_body): naming no ids, so the key's own app.
    identity(envoy.check("POST", path, owner["key"], grpc_style=True))
    # A stranger's PAT naming the owner's app through the frame.
    stranger_frame = frame(ids(owner["app"]))
    status, _ = refusal(envoy.check("POST", path, "sgp_nobody", body=stranger_frame))
    assert status == 401


def test_cut_or_garbled_bodies_are_refused(envoy, owner):
    request = service_pb2.ListInputsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=owner["id"], app_id=owner["other_app"])
    )
    whole = frame(request)
    path = "/clarifai.api.V2/ListInputs"
    status, body = refusal(
        envoy.check(
            "POST",
            path,
            owner["key"],
            body=whole[:-3],
            headers={"x-envoy-auth-partial-body": "true"},
            grpc_style=True,
        )
    )
    assert (status, body["status"]["code"]) == (400, codes.CONN_INVALID_REQUEST)
    assert "max_request_bytes" in body["status"]["details"]
    status, body = refusal(envoy.check("POST", path, owner["key"], body=whole[:-3]))
    assert status == 400  # the frame says it is longer than what came
    status, body = refusal(
        envoy.check("POST", path, owner["key"], body=b"\x00\x00\x00\x00\x03\xff\xff\xff")
    )
    assert (status, body["status"]["code"]) == (400, codes.CONN_BAD_REQUEST_FORMAT)


def test_unknown_paths_and_verbs(envoy, owner):
    status, body = refusal(envoy.check("GET", "/v2/no/such/route", owner["pat"]))
    assert (status, body["status"]["code"]) == (404, codes.CONN_DOES_NOT_EXIST)
    status, body = refusal(envoy.check("PUT", "/v2/users/me/apps", owner["pat"]))
    assert (status, body["status"]["code"]) == (405, codes.CONN_METHOD_NOT_ALLOWED)
    status, _ = refusal(envoy.check("POST", "/clarifai.api.V2/NoSuchMethod", owner["pat"]))
    assert status == 404
    # scopegate's own routes are not a platform's to forward.
    status, _ = refusal(envoy.check("GET", "/scopegate/v1/organizations/x", owner["pat"]))
    assert status == 404


def test_public_app_read_and_noauth_method(server, envoy, owner):
    stranger_id = new_id()
    stranger = server.create_user(stranger_id)
    headers = identity(
        envoy.check("GET", f"/v2/users/{owner['id']}/apps/{owner['public_app']}", stranger)
    )
    assert (headers["x-scopegate-caller"], headers["x-scopegate-relation"]) == (
        stranger_id,
        "public",
    )
    status, _ = refusal(
        envoy.check("DELETE", f"/v2/users/{owner['id']}/apps/{owner['public_app']}", stranger)
    )
    assert status in (403, 404)
    # NoAuth (GetStatusCode): no caller; a client's spoofed caller is removed.
    response = envoy.check(
        "POST",
        "/clarifai.api.V2/GetStatusCode",
        headers={"x-scopegate-caller": "admin"},
        grpc_style=True,
    )
    assert set(identity(response)) == {"x-request-id"}
    assert "x-scopegate-caller" in response.ok_response.headers_to_remove


def test_decisions_are_the_dispatchers(envoy, owner, grpc_client):
    """A revoked key is refused by Check at once, as by a direct call (same caches)."""
    key = ok(
        grpc_client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
                keys=[resources_pb2.Key(type="personal_access_token", scopes=["All"])],
            ),
            metadata=grpc_client.auth(owner["pat"]),
        )
    ).keys[0]
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}"
    identity(envoy.check("GET", path, key.id))
    ok(
        grpc_client.stub.DeleteKey(
            service_pb2.DeleteKeyRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="me"), key_id=key.id
            ),
            metadata=grpc_client.auth(owner["pat"]),
        )
    )
    status, body = refusal(envoy.check("GET", path, key.id))
    assert (status, body["status"]["code"]) == (401, codes.CONN_KEY_INVALID)


@pytest.fixture(scope="module")
def one_port_server(request, tmp_path_factory):
    server = start_server(request, tmp_path_factory, "sqlite", one_port=True)
    yield server
    assert server.stop() == 0, server.log()


def test_check_on_one_port(one_port_server):
    user_id = new_id()
    pat = one_port_server.create_user(user_id)
    envoy = Envoy(one_port_server.grpc_address)
    headers = identity(envoy.check("GET", "/v2/users/me/apps", pat))
    assert headers["x-scopegate-caller"] == user_id
    status, _ = refusal(envoy.check("GET", "/v2/users/me/apps"))
    assert status == 401


def test_readme_envoy_filter_is_valid():
    """The README's `http_filters` block parses into Envoy's own messages (field names,
    enum values, types), the closest check of it this machine allows."""
    yaml = pytest.importorskip("yaml")
    # Imported for their descriptors: the messages the blocks' typed configs name.
    from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
    from envoy.extensions.filters.http.router.v3 import router_pb2
    from google.protobuf import json_format

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```yaml\n")[1:]]
    (filters,) = [yaml.safe_load(b) for b in blocks if "envoy.filters.http.ext_authz" in b]
    parsed = {}
    for entry in filters["http_filters"]:
        config = dict(entry["typed_config"])
        kind = config.pop("@type").rsplit("/", 1)[1]
        message = {
            ext_authz_pb2.ExtAuthz.DESCRIPTOR.full_name: ext_authz_pb2.ExtAuthz,
            router_pb2.Router.DESCRIPTOR.full_name: router_pb2.Router,
        }[kind]()
        parsed[entry["name"]] = json_format.ParseDict(config, message)
    ext_authz = parsed["envoy.filters.http.ext_authz"]
    assert ext_authz.grpc_service.envoy_grpc.cluster_name == "scopegate"
    assert ext_authz.with_request_body.pack_as_bytes
    assert not ext_authz.with_request_body.allow_partial_message
    assert not ext_authz.failure_mode_allow
    assert list(parsed)[-1] == "envoy.filters.http.router"


def test_raw_header_map(envoy, owner):
    """Envoy's `encode_raw_headers`: the headers in `header_map`, values as bytes."""
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}"
    http.method, http.path = "GET", path
    for key, value in ((":path", path), ("authorization", f"Key {owner['pat']}")):
        http.header_map.headers.add(key=key, raw_value=value.encode())
    headers = identity(envoy.stub.Check(request, timeout=30))
    assert headers["x-scopegate-caller"] == owner["id"]


def test_decisions_appear_in_the_access_log(server, envoy, owner):
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}"
    allowed_id = identity(envoy.check("GET", path, owner["pat"]))["x-request-id"]
    _, body = refusal(envoy.check("GET", path, "sgp_garbage"))
    refused_id = body["status"]["req_id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in server.log().splitlines() if "scopegate.access" in line]
        found = {
            request_id: [json.loads(line) for line in lines if request_id in line]
            for request_id in (allowed_id, refused_id)
        }
        if all(found.values()):
            break
        time.sleep(0.1)
    (allowed,), (refused,) = found[allowed_id], found[refused_id]
    assert (allowed["transport"], allowed["method"], allowed["code"]) == (
        "envoy",
        "GetApp",
        codes.SUCCESS,
    )
    assert allowed["user_id"] == owner["id"]
    assert (refused["transport"], refused["code"]) == ("envoy", codes.CONN_KEY_INVALID)


def test_dot_segments_are_refused(envoy, owner):
    """A path the service behind may resolve differently than the router reads it: an API
    key climbing from its own app's inputs to another app's."""
    base = f"/v2/users/{owner['id']}/apps/{owner['app']}/inputs"
    for climb in ("/../../{app}/inputs", "/%2e%2E/%2E%2e/{app}/inputs", "/..%2F..%2F{app}"):
        path = base + climb.format(app=owner["other_app"])
        status, body = refusal(envoy.check("GET", path, owner["key"]))
        assert (status, body["status"]["code"]) == (400, codes.CONN_BAD_REQUEST_FORMAT), path
    status, _ = refusal(envoy.check("GET", base + "/./x", owner["key"]))
    assert status == 400


def test_client_request_id_prefix(envoy, owner):
    """The official clients' `x-clarifai-request-id-prefix` begins the id, as on a direct call."""
    path = f"/v2/users/{owner['id']}/apps/{owner['app']}"
    prefix = {"x-clarifai-request-id-prefix": "sdk-python-12.5 <script>"}
    allowed = identity(envoy.check("GET", path, owner["pat"], headers=prefix))
    assert allowed["x-request-id"].startswith("sdk-python-12.5script-sg-")
    _, body = refusal(envoy.check("GET", path, "sgp_garbage", headers=prefix))
    assert body["status"]["req_id"].startswith("sdk-python-12.5script-sg-")
