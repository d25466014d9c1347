"""Authentication and authorization errors, as the real service answers them."""

from __future__ import annotations

import grpc
import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.contract.catalog import load_catalog
from tests.support.api import http, me, ok
from tests.support.clients import Client, make_stub, new_id

KEY_INVALID = "Invalid API key or Invalid API key/application pair"


@pytest.mark.parametrize(
    "headers, problem",
    [
        ({}, "Missing"),
        ({"authorization": "Bearer abc"}, "Malformed"),
        ({"authorization": "Key"}, "Malformed"),
        ({"authorization": "Key a b"}, "Malformed"),
    ],
)
def test_rest_missing_or_malformed_header(server, headers, problem):
    status, body = http(server, "GET", "/v2/users/me/apps", headers=headers)
    assert status == 401
    assert body["status"]["code"] == codes.CONN_INVALID_REQUEST
    assert body["status"]["description"] == "Invalid request"
    assert problem in body["status"]["details"]
    assert "Key <secret>" in body["status"]["details"]


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer abc"),)])
def test_grpc_missing_or_malformed_header(server, metadata):
    stub = make_stub(server, "grpc")
    response = stub.ListApps(service_pb2.ListAppsRequest(user_app_id=me()), metadata=metadata)
    assert response.status.code == codes.CONN_INVALID_REQUEST
    assert "Key <secret>" in response.status.details


@pytest.mark.parametrize(
    "secret",
    [
        "sgp_" + "A" * 36,  # well-formed prefix, wrong checksum
        "0123456789abcdef0123456789abcdef",  # legacy format, never imported
        "not-a-key",
    ],
)
def test_unknown_secret_is_key_invalid(client: Client, secret):
    response = client.stub.ListApps(
        service_pb2.ListAppsRequest(user_app_id=me()), metadata=client.auth(secret)
    )
    assert response.status.code == codes.CONN_KEY_INVALID
    assert response.status.description == KEY_INVALID


def test_unknown_secret_rest_status(server):
    status, body = http(
        server, "GET", "/v2/users/me/apps", headers={"authorization": "Key sgk_" + "b" * 36}
    )
    assert status == 401
    assert body["status"]["description"] == KEY_INVALID


def _app_key(client: Client, pat: str, scopes=("All",)) -> tuple[str, str]:
    app_id = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[resources_pb2.App(id=app_id)]),
            metadata=client.auth(pat),
        )
    )
    made = ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=me(),
                keys=[
                    resources_pb2.Key(
                        type="app_specific_key",
                        scopes=list(scopes),
                        apps=[resources_pb2.App(id=app_id)],
                    )
                ],
            ),
            metadata=client.auth(pat),
        )
    )
    return app_id, made.keys[0].id


def test_api_key_refused_on_pat_only_method(client: Client, user):
    _, pat = user
    _, api_key = _app_key(client, pat)
    response = client.stub.ListApps(
        service_pb2.ListAppsRequest(user_app_id=me()), metadata=client.auth(api_key)
    )
    assert response.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert "Personal Access Token" in response.status.details


def test_missing_scopes_are_listed(client: Client, user):
    _, pat = user
    catalog = load_catalog()
    held = catalog.methods["ListApps"].scopes
    narrow = (
        ok(
            client.stub.PostKeys(
                service_pb2.PostKeysRequest(
                    user_app_id=me(),
                    keys=[resources_pb2.Key(type="personal_access_token", scopes=sorted(held))],
                ),
                metadata=client.auth(pat),
            )
        )
        .keys[0]
        .id
    )
    response = client.stub.PostApps(
        service_pb2.PostAppsRequest(user_app_id=me(), apps=[resources_pb2.App(id=new_id("app"))]),
        metadata=client.auth(narrow),
    )
    assert response.status.code == codes.CONN_INSUFFICIENT_SCOPES
    required = catalog.methods["PostApps"].scopes
    listed = set(response.status.details.split(":", 1)[1].replace(" ", "").split(","))
    assert listed == required - held
    # The scope it holds is enough for what needs only that.
    ok(
        client.stub.ListApps(
            service_pb2.ListAppsRequest(user_app_id=me()), metadata=client.auth(narrow)
        )
    )


def test_api_key_cannot_name_another_app(client: Client, user, server):
    _, pat = user
    _, api_key = _app_key(client, pat)
    other_app, _ = _app_key(client, pat)
    stranger = new_id()
    server.create_user(stranger)
    for ids in (
        me(app_id=other_app),
        me(app_id="no-such-app"),
        me(user_id=stranger, app_id="anything"),
    ):
        response = client.stub.GetApp(
            service_pb2.GetAppRequest(user_app_id=ids), metadata=client.auth(api_key)
        )
        assert response.status.code == codes.CONN_KEY_INVALID
        assert response.status.description == KEY_INVALID


def test_pat_on_strangers_app_looks_missing(client: Client, user, server):
    _, pat = user
    stranger = new_id()
    stranger_pat = server.create_user(stranger)
    app_id, _ = _app_key(client, stranger_pat)
    existing = client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=stranger, app_id=app_id)),
        metadata=client.auth(pat),
    )
    missing = client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=stranger, app_id="nope")),
        metadata=client.auth(pat),
    )
    nobody = client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=new_id(), app_id="nope")),
        metadata=client.auth(pat),
    )
    for response in (existing, missing, nobody):
        assert response.status.code == codes.CONN_DOES_NOT_EXIST
        assert response.status.description == "Resource does not exist"
    # The owner's own missing app answers the same.
    own_missing = client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(app_id="nope")), metadata=client.auth(pat)
    )
    assert own_missing.status.code == codes.CONN_DOES_NOT_EXIST


def test_me_means_the_caller(client: Client, user, server):
    user_id, pat = user
    other = new_id()
    other_pat = server.create_user(other)
    for secret, expected in ((pat, user_id), (other_pat, other)):
        response = ok(
            client.stub.GetUser(
                service_pb2.GetUserRequest(user_app_id=me()), metadata=client.auth(secret)
            )
        )
        assert response.user.id == expected


def test_not_implemented_comes_after_auth(client: Client, user):
    _, pat = user
    request = service_pb2.ListWorkflowsRequest(user_app_id=me(app_id="x"))
    unauthenticated = client.stub.ListWorkflows(request, metadata=client.auth("sgp_nope"))
    assert unauthenticated.status.code == codes.CONN_KEY_INVALID
    app_id = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[resources_pb2.App(id=app_id)]),
            metadata=client.auth(pat),
        )
    )
    response = client.stub.ListWorkflows(
        service_pb2.ListWorkflowsRequest(user_app_id=me(app_id=app_id)), metadata=client.auth(pat)
    )
    assert response.status.code == codes.NOT_IMPLEMENTED
    assert "ListWorkflows" in response.status.details


def test_no_auth_methods_need_no_key(server):
    stub = make_stub(server, "grpc")
    listed = stub.ListStatusCodes(service_pb2.ListStatusCodesRequest())
    assert listed.status.code == codes.SUCCESS
    names = {s.code: s.description for s in listed.statuses}
    assert names[codes.CONN_KEY_INVALID] == "CONN_KEY_INVALID"
    one = stub.GetStatusCode(service_pb2.GetStatusCodeRequest(status_code_id="11008"))
    assert one.status.code == codes.CONN_KEY_INVALID
    status, body = http(server, "GET", "/v2/status_codes/CONN_DOES_NOT_EXIST")
    assert status == 200 and body["status"]["code"] == codes.CONN_DOES_NOT_EXIST
    status, body = http(server, "GET", "/v2/status_codes/bogus")
    assert status == 400 and "not a status code" in body["status"]["details"]


def test_grpc_transport_never_raises(server):
    stub = make_stub(server, "grpc")
    try:
        stub.GetApp(service_pb2.GetAppRequest(), metadata=(("authorization", "Key x"),))
    except grpc.RpcError as error:  # pragma: no cover - the assertion explains
        pytest.fail(f"gRPC error instead of an in-band status: {error}")
