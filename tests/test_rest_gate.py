"""The REST refusal gate: garbage credentials answered before Starlette, exactly as the
dispatcher answers them; everything else passes through."""

from __future__ import annotations

import json
from http.client import HTTPConnection

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.access.authentication import key_invalid
from scopegate.contract.status import ApiError, C
from scopegate.transports.rest.codec import message_to_dict
from scopegate.transports.rest.errors import status_json
from tests.support.api import http
from tests.support.clients import new_id

CHECKSUM_INVALID = "sgp_" + "A" * 36  # refused by the gate
FORGED = "sgp_" + "A" * 30 + "0sc9q7"  # valid checksum, unknown: refused by the dispatcher


@pytest.mark.parametrize(
    "error",
    [
        key_invalid(),
        key_invalid("This key expired at 2026-01-01T00:00:00+00:00."),
        ApiError(C.CONN_INVALID_REQUEST, "Invalid request", "Missing header. «ü»"),
    ],
)
@pytest.mark.parametrize("request_id", ["sg-0a1b2c3d-7", ""])
def test_status_json_is_what_the_dispatcher_writes(error, request_id):
    assert json.loads(status_json(error, request_id)) == {
        "status": message_to_dict(error.to_status(request_id))
    }


def raw_get(server, path: str, headers: dict[str, str]):
    connection = HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), json.loads(reply.read())
    finally:
        connection.close()


def test_gate_and_dispatcher_answer_alike(server):
    from scopegate.auth import tokens

    assert tokens.parse(CHECKSUM_INVALID) is None and tokens.parse(FORGED) is not None
    answers = []
    for secret in (CHECKSUM_INVALID, FORGED):
        status, headers, body = raw_get(server, "/v2/myscopes", {"authorization": f"Key {secret}"})
        answers.append((status, headers["content-type"], body["status"].pop("req_id")[:3], body))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and answers[0][3]["status"]["code"] == codes.CONN_KEY_INVALID


def test_gate_leaves_other_routes_alone(server):
    bad = {"authorization": f"Key {CHECKSUM_INVALID}"}
    # NoAuth methods ignore credentials.
    status, body = http(server, "GET", "/v2/status_codes/10000", headers=bad)
    assert status == 200 and body["status"]["code"] == codes.SUCCESS
    # Unknown routes and verbs are still 404 / 405 before any credential check.
    assert http(server, "GET", "/v2/no/such/route", headers=bad)[0] == 404
    assert http(server, "DELETE", "/v2/myscopes", headers=bad)[0] == 405
    # Login is its own route: a stray authorization header does not stop it.
    status, body = http(
        server,
        "POST",
        "/v2/login",
        headers={**bad, "content-type": "application/json"},
        body={"email": f"{new_id()}@example.com", "password": "wrong password 1"},
    )
    assert status == 401 and body["status"]["code"] == codes.CONN_CREDENTIALS_INVALID


def test_gate_refuses_before_the_body_is_read(server):
    # Garbage credentials win over a malformed body: the body is never decoded.
    status, body = http(
        server,
        "POST",
        "/v2/users/me/apps",
        headers={"authorization": f"Key {CHECKSUM_INVALID}", "content-type": "application/json"},
        body=b"{not json",
    )
    assert status == 401 and body["status"]["code"] == codes.CONN_KEY_INVALID
    # With no credentials at all, likewise.
    status, body = http(server, "POST", "/v2/users/me/apps", body=b"{not json")
    assert status == 401 and body["status"]["code"] == codes.CONN_INVALID_REQUEST


def test_session_token_header_garbage_is_refused_as_before(server, user):
    _, pat = user
    headers = {"x-clarifai-session-token": CHECKSUM_INVALID}
    status, body = http(server, "GET", "/v2/users/me/apps", headers=headers)
    assert status == 401 and body["status"]["code"] == codes.CONN_KEY_INVALID
    # The authorization header wins when both are sent, as in the dispatcher.
    status, body = http(
        server, "GET", "/v2/users/me/apps", headers={**headers, "authorization": f"Key {pat}"}
    )
    assert status == 200 and body["status"]["code"] == codes.SUCCESS
