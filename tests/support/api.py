"""Calling the API in tests: success checks, ids, plain HTTP, login, organizations, grants."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.clients import Client, new_id

ORGS = "/scopegate/v1/organizations"
PASSWORD = "tr0ub4dor&3xyz"


def ok(response):
    assert response.status.code == codes.SUCCESS, response.status
    assert response.status.req_id
    return response


def me(**ids):
    return resources_pb2.UserAppIDSet(
        user_id=ids.get("user_id", "me"), app_id=ids.get("app_id", "")
    )


def http(server, method: str, path: str, *, headers=None, body=None):
    """Plain HTTP: (HTTP status, decoded JSON body)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(
        server.http_url + path, method=method, data=data, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def login(server, email: str, password: str = PASSWORD):
    return http(
        server,
        "POST",
        "/v2/login",
        body={"email": email, "password": password},
        headers={"content-type": "application/json"},
    )


def rest(server, method: str, path: str, secret: str, body: dict | None = None):
    headers = {"authorization": f"Key {secret}", "content-type": "application/json"}
    return http(server, method, path, headers=headers, body=body)


def call(server, method: str, path: str, secret: str, body: dict | None = None) -> dict:
    status, reply = rest(server, method, path, secret, body)
    assert status == 200 and reply["status"]["code"] == codes.SUCCESS, reply
    return reply


def add_collaborator(server, client: Client, owner_pat: str, scopes):
    """An app of the owner with a new user as its collaborator holding `scopes`:
    (app id, guest id, guest PAT, the PostCollaborators reply)."""
    app_id = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[resources_pb2.App(id=app_id)]),
            metadata=client.auth(owner_pat),
        )
    )
    guest_id = new_id()
    guest_pat = server.create_user(guest_id)
    added = ok(
        client.stub.PostCollaborators(
            service_pb2.PostCollaboratorsRequest(
                user_app_id=me(app_id=app_id),
                collaborators=[
                    resources_pb2.Collaborator(
                        user=resources_pb2.User(primary_email=f"{guest_id}@example.com"),
                        scopes=list(scopes),
                    )
                ],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    return app_id, guest_id, guest_pat, added


def pat_reads_its_user(server, transport: str) -> None:
    """A new user's PAT reads the user through an official client; an unknown secret is
    refused as usual (a server's first check with each transport)."""
    from tests.support.clients import make_stub

    user_id = new_id()
    pat = server.create_user(user_id)
    client = Client(transport, make_stub(server, transport))
    request = service_pb2.GetUserRequest(user_app_id=me())
    assert ok(client.stub.GetUser(request, metadata=client.auth(pat))).user.id == user_id
    refused = client.stub.GetUser(request, metadata=client.auth("sgp_nope"))
    assert refused.status.code == codes.CONN_KEY_INVALID
