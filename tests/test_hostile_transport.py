"""What a hostile client sends to the transports themselves: deeply nested JSON, repeated
credential headers, a forged Host on redirects, bytes that are not a protobuf message.
Every answer is a Clarifai status (or a plain redirect), never a crash or a Python repr."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import grpc
import pytest
import requests
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.clients import make_stub, new_id
from tests.support.server_process import ServerProcess
from tests.support.servers import start_server

NESTING = 1000
DEEP_OBJECT = '{"a":' * NESTING + "1" + "}" * NESTING
DEEP_ARRAY = "[" * NESTING + "]" * NESTING


@pytest.fixture(scope="module")
def server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    """One SQLite server: nothing here depends on the database behind the transports."""
    process = start_server(request, tmp_path_factory, "sqlite")
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def pat(server) -> str:
    return server.create_user(new_id())


def _raw(server, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""):
    """One HTTP request with headers exactly as given (repeats kept): (status, headers, body)."""
    address = urlsplit(server.http_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host="host" in {n for n, _ in headers})
        for name, value in [*headers, ("content-length", str(len(body)))]:
            connection.putheader(name, value)
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


def _clarifai_status(status: int, headers: dict, body: bytes) -> dict:
    assert headers.get("content-type", "").startswith("application/json"), (status, body)
    return json.loads(body)["status"]


def _no_python_repr(text: str) -> None:
    assert "<class" not in text and " object at 0x" not in text and "Error'" not in text, text


# --- Deeply nested JSON (item 5) ---------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_OBJECT, DEEP_ARRAY], ids=["object", "array"])
@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v2/users/me/apps"),  # a catalog route
        ("POST", "/v2/users/me/keys"),
        ("POST", "/v2/login"),  # extension routes read bodies with the same reader
        ("POST", "/scopegate/v1/organizations"),
        ("POST", "/scopegate/v1/users/me/keys/k/roll"),
    ],
)
def test_deeply_nested_json_body_is_a_bad_request(server, pat, method, path, body):
    headers = [("authorization", f"Key {pat}"), ("content-type", "application/json")]
    status, reply_headers, raw = _raw(server, method, path, headers, body.encode())
    assert status == 400, raw
    answer = _clarifai_status(status, reply_headers, raw)
    assert answer["code"] == codes.CONN_BAD_REQUEST_FORMAT
    assert "nest" in answer["details"] and "100" in answer["details"], answer
    _no_python_repr(json.dumps(answer))


def test_deep_json_inside_a_valid_field_is_a_bad_request(server, pat):
    """Nesting the JSON reader accepts but the message parser cannot follow (a Struct's
    values recurse without the parser's own depth limit)."""
    metadata = '{"a":' * 600 + "1" + "}" * 600
    body = '{"inputs":[{"data":{"metadata":' + metadata + "}}]}"
    headers = [("authorization", f"Key {pat}"), ("content-type", "application/json")]
    app_path = f"/v2/users/me/apps/{new_id('app')}/inputs"
    status, reply_headers, raw = _raw(server, "POST", app_path, headers, body.encode())
    assert status == 400, raw
    answer = _clarifai_status(status, reply_headers, raw)
    assert answer["code"] == codes.CONN_BAD_REQUEST_FORMAT
    _no_python_repr(json.dumps(answer))


@pytest.mark.parametrize(
    "query",
    [
        "a." * 5000 + "b=1",
        "[" * 5000 + "=1",
        "user_app_id.app_id=" + "[" * 5000,
    ],
    ids=["unknown-deep", "brackets-key", "brackets-value"],
)
def test_hostile_query_strings_answer_a_status(server, pat, query):
    """Dotted names are walked without recursion and the message parser stops at 100
    levels; no GET route's request has a singular field path that recurses."""
    headers = [("authorization", f"Key {pat}")]
    status, reply_headers, raw = _raw(server, "GET", f"/v2/users/me/apps?{query}", headers)
    assert status in (200, 400), raw
    answer = _clarifai_status(status, reply_headers, raw)
    if status == 400:
        assert answer["code"] == codes.CONN_BAD_REQUEST_FORMAT
    _no_python_repr(json.dumps(answer))


def test_hostile_path_values_answer_a_status(server, pat):
    headers = [("authorization", f"Key {pat}")]
    for path in (
        "/v2/users/me/apps/" + "a/" * 3000,
        "/v2/users/me/apps/" + "%5B" * 5000,
        "/v2/users/me/apps/" + "%00",
    ):
        status, reply_headers, raw = _raw(server, "GET", path, headers)
        assert status in (400, 404), (path[:60], raw)
        _no_python_repr(json.dumps(_clarifai_status(status, reply_headers, raw)))


# --- Repeated credential headers (item 13) -----------------------------------------------


@pytest.mark.parametrize("name", ["authorization", "x-clarifai-session-token"])
@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v2/users/me/apps"),  # refused by the gate ahead of the V2 endpoint
        ("GET", "/v2/users/me"),
        ("POST", "/v2/logout"),
        ("GET", "/v2/users/me/organizations"),
        ("POST", "/scopegate/v1/users/me/keys/k/roll"),
    ],
)
def test_rest_refuses_a_repeated_credential_header(server, pat, name, method, path):
    value = f"Key {pat}" if name == "authorization" else "not-a-session"
    for second in (value, "Key sgp_someone_else"):
        headers = [(name, value), (name, second)]
        status, reply_headers, raw = _raw(server, method, path, headers)
        assert status == 400, raw
        answer = _clarifai_status(status, reply_headers, raw)
        assert answer["code"] == codes.CONN_INVALID_REQUEST
        assert name in answer["details"], answer


def test_rest_one_of_each_credential_header_is_not_a_repeat(server, pat):
    headers = [("authorization", f"Key {pat}"), ("x-clarifai-session-token", "x")]
    _, _, raw = _raw(server, "GET", "/v2/users/me/apps", headers)
    assert b"more than once" not in raw, raw


@pytest.mark.parametrize("name", ["authorization", "x-clarifai-session-token"])
def test_grpc_refuses_a_repeated_credential_header(server, pat, name):
    stub = make_stub(server, "grpc")
    value = f"Key {pat}" if name == "authorization" else "not-a-session"
    request = service_pb2.ListAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me"))
    answer = stub.ListApps(request, metadata=((name, value), (name, "Key sgp_someone_else")))
    assert answer.status.code == codes.CONN_INVALID_REQUEST, answer.status
    assert name in answer.status.details
    # One is fine.
    answer = stub.ListApps(request, metadata=(("authorization", f"Key {pat}"),))
    assert answer.status.code == codes.SUCCESS, answer.status


# --- Redirects never built from Host (item 16a) ------------------------------------------


@pytest.mark.parametrize(
    "path, location",
    [
        ("/portal", "/portal/"),
        ("/portal?next=x", "/portal/?next=x"),
        ("/healthz/", "/healthz"),
        ("/portal/apps/", "/portal/apps"),
        ("/portal/login/", "/portal/login"),
    ],
)
def test_slash_redirects_are_relative(server, path, location):
    for host in ("evil.example", "evil.example:80", "127.0.0.1"):
        reply = requests.get(
            server.http_url + path, headers={"host": host}, allow_redirects=False, timeout=30
        )
        assert reply.is_redirect, (reply.status_code, reply.text)
        assert reply.headers["location"] == location


def test_unknown_paths_are_still_not_found(server):
    for path in ("/nothing", "/nothing/", "/portal/nothing/", "//evil.example/"):
        status, headers, _ = _raw(server, "GET", path, [("host", "evil.example")])
        assert status == 404, path
        assert "location" not in {name.lower() for name in headers}


# --- Bytes that are not a protobuf message (item 16b) ------------------------------------

GARBAGE = [b"\xff\xff\xff\xff", b"\x0a\xff\x01abc", b"\x08" + b"\xff" * 11, b"\x0b"]


@pytest.mark.parametrize(
    "method, response_type",
    [
        ("ListApps", service_pb2.MultiAppResponse),
        ("PostKeys", service_pb2.MultiKeyResponse),
        ("GetUser", service_pb2.SingleUserResponse),
    ],
)
def test_grpc_garbage_body_answers_bad_request_format(server, pat, method, response_type):
    channel = grpc.insecure_channel(server.grpc_address)
    try:
        call = channel.unary_unary(
            f"/clarifai.api.V2/{method}", response_deserializer=response_type.FromString
        )
        for garbage in GARBAGE:
            # Raw bytes go out as they are (no request serializer): the server decodes them.
            answer, rpc = call.with_call(garbage, metadata=(("authorization", f"Key {pat}"),))
            assert rpc.code() == grpc.StatusCode.OK
            assert answer.status.code == codes.CONN_BAD_REQUEST_FORMAT, answer.status
            text = answer.status.description + answer.status.details
            _no_python_repr(text)
            assert "DecodeError" not in text
    finally:
        channel.close()


def test_grpc_garbage_on_streaming_methods_answers_bad_request_format(server, pat):
    """Server-streaming and bidirectional methods decode their (first) message the same way
    and answer one response."""
    metadata = (("authorization", f"Key {pat}"),)
    channel = grpc.insecure_channel(server.grpc_address)
    try:
        server_streaming = channel.unary_stream(
            "/clarifai.api.V2/StreamAnnotations",
            response_deserializer=service_pb2.MultiAnnotationResponse.FromString,
        )
        answers = list(server_streaming(GARBAGE[0], metadata=metadata))
        assert [a.status.code for a in answers] == [codes.CONN_BAD_REQUEST_FORMAT]
        both_streaming = channel.stream_stream(
            "/clarifai.api.V2/StreamModelOutputs",
            response_deserializer=service_pb2.MultiOutputResponse.FromString,
        )
        answers = list(both_streaming(iter([GARBAGE[1]]), metadata=metadata))
        assert [a.status.code for a in answers] == [codes.CONN_BAD_REQUEST_FORMAT]
    finally:
        channel.close()
