"""REST details: request decoding, HTTP statuses, JSON shape."""

from __future__ import annotations

from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import http
from tests.support.clients import new_id


def test_healthz(server):
    assert http(server, "GET", "/healthz") == (200, {"status": "ok"})


def test_json_body_enum_names_and_snake_case_answer(server, user):
    _, pat = user
    auth = {"authorization": f"Key {pat}", "content-type": "application/json"}
    app_id = new_id("app")
    status, body = http(
        server,
        "POST",
        "/v2/users/me/apps",
        headers=auth,
        body={"apps": [{"id": app_id, "visibility": {"gettable": "PUBLIC"}}]},
    )
    assert status == 200, body
    assert body["status"]["code"] == codes.SUCCESS
    app = body["apps"][0]
    assert app["visibility"]["gettable"] == 50
    assert "created_at" in app and "createdAt" not in app
    # camelCase field names are accepted on input too, as protobuf JSON allows.
    status, body = http(
        server,
        "POST",
        "/v2/users/me/keys",
        headers=auth,
        body={
            "keys": [
                {
                    "type": "app_specific_key",
                    "scopes": ["Inputs:Get"],
                    "apps": [{"id": app_id, "userId": "me"}],
                }
            ]
        },
    )
    assert status == 200, body
    assert body["keys"][0]["id"].startswith("sgk_")


def test_query_string_dotted_repeated_and_bools(server, user):
    _, pat = user
    auth = {"authorization": f"Key {pat}"}
    status, body = http(
        server,
        "GET",
        "/v2/users/me/keys?type=personal_access_token&not_expired=True&per_page=1&page=1",
        headers=auth,
    )
    assert status == 200, body
    assert [k["type"] for k in body["keys"]] == ["personal_access_token"]
    status, body = http(server, "GET", "/v2/users/me/keys?per_page=1&page=3", headers=auth)
    assert status == 200 and body.get("keys", []) == []
    status, body = http(server, "GET", "/v2/users/me/keys?scopes=All&scopes=Apps_Get", headers=auth)
    assert status == 200, body
    status, body = http(server, "GET", "/v2/users/me/apps?user_app_id.user_id=me", headers=auth)
    assert status == 200, body


def test_malformed_requests_are_400_and_say_why(server, user):
    _, pat = user
    auth = {"authorization": f"Key {pat}"}
    cases = [
        ("POST", "/v2/users/me/apps", b"{not json", "not valid JSON"),
        ("POST", "/v2/users/me/apps", b"[1, 2]", "JSON object"),
        ("POST", "/v2/users/me/apps", b'{"apps": [{"nope": 1}]}', "nope"),
        ("GET", "/v2/users/me/keys?per_page=many", None, "per_page"),
        ("GET", "/v2/users/me/keys?not_expired=maybe", None, "true or false"),
        ("GET", "/v2/users/me/keys?unknown_field=1", None, "unknown_field"),
    ]
    for method, path, body, hint in cases:
        status, reply = http(server, method, path, headers=auth, body=body)
        assert status == 400, (path, reply)
        assert reply["status"]["code"] == codes.CONN_BAD_REQUEST_FORMAT
        assert hint in reply["status"]["details"], reply


def test_unknown_route_and_wrong_verb(server):
    status, body = http(server, "GET", "/v2/no/such/route")
    assert status == 404 and body["status"]["code"] == codes.CONN_DOES_NOT_EXIST
    status, body = http(server, "PUT", "/v2/status_codes")
    assert status == 405 and body["status"]["code"] == codes.CONN_METHOD_NOT_ALLOWED
    assert "GET" in body["status"]["details"]


def test_internal_statuses_never_leak_stack_traces(server, user):
    _, pat = user
    status, body = http(
        server,
        "POST",
        "/v2/users/me/apps",
        headers={"authorization": f"Key {pat}"},
        body={"apps": [{"id": "bad id!"}]},
    )
    assert status == 400
    assert "Traceback" not in str(body)
    assert "bad id!" in body["status"]["details"]
