"""One REST error renderer: every route answers an ApiError with the same HTTP status,
`Retry-After` when throttled, and `{"status": ...}` body; the login throttle included.
Organization routes answer as extension methods of the one dispatch path."""

from __future__ import annotations

import json
import re
from http.client import HTTPConnection

from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.access.address_throttle import ThrottledError
from scopegate.contract.status import ApiError, C
from scopegate.transports.rest.errors import error_response, json_response
from tests.support.api import ORGS, PASSWORD, call, rest
from tests.support.clients import new_id


def _post(server, path: str, body: dict, headers: dict[str, str] | None = None):
    connection = HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"content-type": "application/json", **(headers or {})},
        )
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(reply.read())
    finally:
        connection.close()


def test_renderer_sets_status_and_retry_after():
    throttled = ThrottledError(2.2)
    response = error_response(throttled, "sg-1")
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert json.loads(response.body)["status"]["req_id"] == "sg-1"
    plain = json_response(
        {"status": {"code": C.CONN_DOES_NOT_EXIST}}, ApiError(C.CONN_DOES_NOT_EXIST, "x")
    )
    assert plain.status_code == 404 and "retry-after" not in plain.headers
    assert json_response({"a": 1}).status_code == 200


def test_a_throttled_login_says_when_to_come_back(server):
    user_id = new_id()
    server.create_user(user_id, password=PASSWORD)
    email = f"{user_id}@example.com"
    for _ in range(5):
        status, headers, _body = _post(server, "/v2/login", {"email": email, "password": "no 1"})
        assert status == 401 and "retry-after" not in headers
    status, headers, body = _post(server, "/v2/login", {"email": email, "password": PASSWORD})
    assert status == 429 and body["status"]["code"] == codes.CONN_THROTTLED
    assert body["status"]["description"] == "Too many failed logins"
    waited = re.search(r"try again in (\d+) seconds", body["status"]["details"])
    assert waited and headers["retry-after"] == waited.group(1)


def test_organization_routes_are_authorized_like_catalog_methods(server, user):
    admin_pat, org_id, member_id = user[1], new_id("org"), new_id()
    member_pat = server.create_user(member_id)
    member = {"user_id": member_id, "role": "org_user"}
    for path, body in ((ORGS, {"id": org_id}), (f"{ORGS}/{org_id}/members", member)):
        call(server, "POST", path, admin_pat, body)
    # Reading takes membership; changing takes admin, refused as scopes only admin holds.
    assert call(server, "GET", f"{ORGS}/{org_id}", member_pat)["organization"]["role"] == {
        "id": "org_user"
    }
    org = f"{ORGS}/{org_id}"
    refused = codes.CONN_INSUFFICIENT_SCOPES, codes.CONN_DOES_NOT_EXIST
    cases = [
        ("POST", f"{org}/teams", member_pat, {"id": "t"}, 403, refused[0]),
        ("DELETE", f"{org}/members/{new_id()}", member_pat, None, 403, refused[0]),
        ("DELETE", f"{org}/members/me", member_pat, None, 200, codes.SUCCESS),  # leaving
        ("DELETE", org, member_pat, None, 404, refused[1]),  # an outsider now
        ("POST", f"{org}/teams", admin_pat, {"id": 7}, 400, codes.CONN_BAD_REQUEST_FORMAT),
        ("GET", ORGS, admin_pat, None, 405, codes.CONN_METHOD_NOT_ALLOWED),
        ("GET", f"{ORGS}/me", admin_pat, None, 404, refused[1]),  # a person is no organization
        ("DELETE", org, admin_pat, None, 200, codes.SUCCESS),
        ("GET", org, admin_pat, None, 404, refused[1]),
    ]
    for verb, path, secret, body, http_status, code in cases:
        status, reply = rest(server, verb, path, secret, body)
        assert (status, reply["status"]["code"]) == (http_status, code), (verb, path, reply)
        # Every answer of the dispatch path is numbered (not a 405: no method was called).
        assert bool(reply["status"].get("req_id")) == (http_status != 405)
        if code == refused[1]:
            assert reply["status"].get("details", "") == ""  # outsiders learn nothing
