"""Per-key limits from the outside: a limited PAT made in the database, the limits
extension (GET|PUT .../keys/{key_id}/limits), and one GetUser call over either transport
with its code, HTTP status, details and RateLimit fields."""

from __future__ import annotations

import requests
from clarifai_grpc.grpc.api import service_pb2

from tests.support.api import me
from tests.support.clients import make_stub
from tests.support.server_process import ServerProcess


def new_key(
    server: ServerProcess, user_id: str, limits: dict | None = None, **kwargs
) -> tuple[str, str]:
    """(secret, public id) of a new PAT of `user_id` with scope All, and `limits` (the
    extension's document) set through the service when given."""
    from scopegate.auth.limits import from_document
    from scopegate.auth.principal import CredentialKind
    from scopegate.services import keys
    from scopegate.services import limits as key_limits
    from scopegate.services.audit import cli_actor

    engine, hasher = server._accounts()
    with engine.begin() as conn:
        record, secret = keys.create_key(
            conn,
            hasher,
            kind=CredentialKind.PAT,
            user_id=user_id,
            app=None,
            description="limited",
            scopes={"All"},
            actor=cli_actor(user_id),
            **kwargs,
        )
        if limits is not None:
            key_limits.set_key_limits(conn, record, from_document(limits), actor=cli_actor(user_id))
    return secret, record.public_id


def limits_url(server, user_id, key_id):
    return f"{server.http_url}/scopegate/v1/users/{user_id}/keys/{key_id}/limits"


def put_limits(server, pat, user_id, key_id, body) -> requests.Response:
    return requests.put(
        limits_url(server, user_id, key_id),
        json=body,
        headers={"authorization": f"Key {pat}"},
        timeout=30,
    )


def get_limits(server, pat, user_id, key_id) -> requests.Response:
    return requests.get(
        limits_url(server, user_id, key_id), headers={"authorization": f"Key {pat}"}, timeout=30
    )


def set_limits(server, owner, body) -> dict:
    user_id, pat, _, key_id = owner
    reply = put_limits(server, pat, user_id, key_id, body)
    assert reply.status_code == 200, reply.text
    return reply.json()["limits"]


def remaining(server, owner) -> int:
    user_id, pat, _, key_id = owner
    reply = get_limits(server, pat, user_id, key_id)
    assert reply.status_code == 200, reply.text
    return reply.json()["limits"]["usage"]["remaining"]


class Answer:
    """One GetUser call's code, HTTP status (REST), details and header fields."""

    def __init__(self, code, details, headers, http_status=0, trailing=None):
        self.code, self.details, self.headers = code, details, headers
        self.http_status, self.trailing = http_status, trailing or {}


def call(server, transport: str, secret: str, user_id: str = "me", forwarded: str = "") -> Answer:
    if transport == "rest":
        headers = {"authorization": f"Key {secret}"}
        if forwarded:
            headers["x-forwarded-for"] = forwarded
        reply = requests.get(f"{server.http_url}/v2/users/{user_id}", headers=headers, timeout=30)
        status = reply.json()["status"]
        fields = {k.lower(): v for k, v in reply.headers.items()}
        return Answer(status["code"], status.get("details", ""), fields, reply.status_code)
    stub = make_stub(server, "grpc")
    metadata = [("authorization", f"Key {secret}")]
    if forwarded:
        metadata.append(("x-forwarded-for", forwarded))
    response, rpc = stub.GetUser.with_call(
        service_pb2.GetUserRequest(user_app_id=me(user_id=user_id)), metadata=metadata
    )
    return Answer(
        response.status.code,
        response.status.details,
        dict(rpc.initial_metadata()),
        trailing=dict(rpc.trailing_metadata()),
    )
