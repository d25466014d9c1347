"""Failed authentications throttled per client address, on a real server.

The server here allows 3 failures per 5-second window per address and answers later ones
after half a second. REST clients connect from their own loopback address (127.0.0.x: Linux
routes all of 127/8 to `lo`), so tests do not share a window; gRPC uses 127.0.0.1.
"""

from __future__ import annotations

import http.client
import itertools
import json
import time

import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.clients import make_stub, new_id
from tests.support.server_process import ServerProcess

LIMIT, WINDOW, DELAY = 3, 5.0, 0.5
BAD = "Key sgp_" + "A" * 36  # checksum-invalid: refused before any query
_addresses = (f"127.0.0.{n}" for n in itertools.count(2))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def throttled_server(request, tmp_path_factory):
    url = None
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"sg_{new_id('t')}")
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("scopegate-throttle"),
        database_url=url,
        extra_env={
            "SCOPEGATE_AUTH_FAILURE_LIMIT": str(LIMIT),
            "SCOPEGATE_AUTH_FAILURE_WINDOW_SECONDS": str(WINDOW),
            "SCOPEGATE_AUTH_FAILURE_DELAY_SECONDS": str(DELAY),
        },
    ).start()
    yield process
    assert process.stop() == 0, process.log()


def get(server: ServerProcess, source: str, authorization: str | None, path="/v2/myscopes"):
    """(HTTP status, headers, JSON body, seconds taken) of one GET from `source`."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.http_port, timeout=30, source_address=(source, 0)
    )
    headers = {"authorization": authorization} if authorization else {}
    started = time.monotonic()
    try:
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        body = json.loads(reply.read())
        return reply.status, dict(reply.getheaders()), body, time.monotonic() - started
    finally:
        connection.close()


def test_failures_past_the_limit_are_throttled_late(throttled_server):
    source = next(_addresses)
    for _ in range(LIMIT):
        status, headers, body, _ = get(throttled_server, source, BAD)
        assert status == 401 and body["status"]["code"] == codes.CONN_KEY_INVALID
        assert "retry-after" not in {h.lower() for h in headers}
    status, headers, body, seconds = get(throttled_server, source, BAD)
    assert status == 429
    assert body["status"]["code"] == codes.CONN_THROTTLED
    assert "Too many failed authentications" in body["status"]["description"]
    assert 1 <= int(headers["retry-after"]) <= WINDOW
    assert seconds >= DELAY * 0.8  # answered after the tarpit delay
    # Every kind of failed authentication counts and is throttled alike.
    for authorization in (None, "Bearer x", "Key " + "0" * 32):
        status, _, body, _ = get(throttled_server, source, authorization)
        assert status == 429 and body["status"]["code"] == codes.CONN_THROTTLED


def test_valid_requests_from_a_throttled_address_still_succeed(throttled_server):
    source = next(_addresses)
    pat = throttled_server.create_user(new_id())
    for _ in range(LIMIT + 1):
        get(throttled_server, source, BAD)
    assert get(throttled_server, source, BAD)[0] == 429
    for _ in range(3):
        status, headers, body, _ = get(throttled_server, source, "Key " + pat)
        assert status == 200 and body["status"]["code"] == codes.SUCCESS
        assert "retry-after" not in {h.lower() for h in headers}
    # NoAuth methods are not authentication at all.
    assert get(throttled_server, source, BAD, "/v2/status_codes/10000")[0] == 200


def test_other_addresses_are_not_throttled(throttled_server):
    flooder, bystander = next(_addresses), next(_addresses)
    for _ in range(LIMIT + 1):
        get(throttled_server, flooder, BAD)
    assert get(throttled_server, flooder, BAD)[0] == 429
    status, _, body, _ = get(throttled_server, bystander, BAD)
    assert status == 401 and body["status"]["code"] == codes.CONN_KEY_INVALID


def test_the_window_expires(throttled_server):
    source = next(_addresses)
    started = time.monotonic()
    for _ in range(LIMIT + 1):
        get(throttled_server, source, BAD)
    assert get(throttled_server, source, BAD)[0] == 429
    time.sleep(max(0.0, started + WINDOW + 0.2 - time.monotonic()))
    status, _, body, _ = get(throttled_server, source, BAD)
    assert status == 401 and body["status"]["code"] == codes.CONN_KEY_INVALID


def test_grpc_failures_are_throttled_and_valid_calls_are_not(throttled_server):
    pat = throttled_server.create_user(new_id())
    stub = make_stub(throttled_server, "grpc")
    request = service_pb2.MyScopesRequest()
    bad = (("authorization", BAD),)
    first = stub.MyScopes(request, metadata=bad)
    assert first.status.code in (codes.CONN_KEY_INVALID, codes.CONN_THROTTLED)
    for _ in range(LIMIT):
        last = stub.MyScopes(request, metadata=bad)
    assert last.status.code == codes.CONN_THROTTLED
    assert "try again in" in last.status.details
    valid = stub.MyScopes(request, metadata=(("authorization", "Key " + pat),))
    assert valid.status.code == codes.SUCCESS


def test_extension_routes_count_and_are_throttled_alike(throttled_server):
    source = next(_addresses)
    for _ in range(LIMIT):
        status, _, body, _ = get(throttled_server, source, BAD, "/v2/users/me/organizations")
        assert status == 401 and body["status"]["code"] == codes.CONN_KEY_INVALID
    status, headers, body, _ = get(throttled_server, source, BAD, "/scopegate/v1/organizations/x")
    assert status == 429 and body["status"]["code"] == codes.CONN_THROTTLED
    assert 1 <= int(headers["retry-after"]) <= WINDOW
