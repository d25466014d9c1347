"""External authorization shares the direct calls' failure throttle (issue 15): failed
checks count toward the caller's address with failed direct calls, and past the limit a
check is answered throttled: forward auth with 403 (nginx takes no 429) and `Retry-After`,
Envoy's Check with 429 and `retry-after`. Check's `attributes.source` names the client only
for a trusted proxy: from any other caller it cannot spread failures over made-up addresses.
The throttle is in memory, so one database will do.
"""

from __future__ import annotations

import http.client
import itertools
import json

import grpc
import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from tests.support.server_process import ServerProcess

LIMIT, WINDOW, DELAY = 3, 30.0, 0.2
BAD = "Key sgp_" + "A" * 36  # checksum-invalid: refused before any query
_addresses = (f"127.0.0.{n}" for n in itertools.count(20))
PROXY = "127.0.0.2"  # a trusted proxy (nginx, say) in front of many clients


@pytest.fixture(scope="module")
def throttled_server(tmp_path_factory):
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("scopegate-ext-throttle"),
        database_url=None,
        extra_env={
            "SCOPEGATE_AUTH_FAILURE_LIMIT": str(LIMIT),
            "SCOPEGATE_AUTH_FAILURE_WINDOW_SECONDS": str(WINDOW),
            "SCOPEGATE_AUTH_FAILURE_DELAY_SECONDS": str(DELAY),
        },
        extra_args=["--trusted-proxy", f"{PROXY}/32"],
    ).start()
    yield process
    assert process.stop() == 0, process.log()


def get(server, source: str, path: str, headers: dict[str, str]):
    """(HTTP status, headers, JSON body) of one GET sent from `source`."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.http_port, timeout=30, source_address=(source, 0)
    )
    try:
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(reply.read())
    finally:
        connection.close()


def test_forward_auth_failures_count_with_direct_calls(throttled_server):
    source = next(_addresses)
    for _ in range(LIMIT - 1):
        status, _, _ = get(throttled_server, source, "/v2/myscopes", {"authorization": BAD})
        assert status == 401
    ask = {
        "authorization": BAD,
        "x-original-method": "GET",
        "x-original-uri": "/v2/users/me/apps",
    }
    status, _, body = get(throttled_server, source, "/scopegate/v1/authorize", ask)
    assert (status, body["status"]["code"]) == (401, codes.CONN_KEY_INVALID)
    status, headers, body = get(throttled_server, source, "/scopegate/v1/authorize", ask)
    assert (status, body["status"]["code"]) == (403, codes.CONN_THROTTLED)
    assert 1 <= int(headers["retry-after"]) <= WINDOW
    # ... and the direct call from that address is throttled too.
    status, _, body = get(throttled_server, source, "/v2/myscopes", {"authorization": BAD})
    assert (status, body["status"]["code"]) == (429, codes.CONN_THROTTLED)
    # Another address is not.
    status, _, _ = get(throttled_server, next(_addresses), "/scopegate/v1/authorize", ask)
    assert status == 401


def test_envoy_source_is_not_believed_from_an_untrusted_caller(throttled_server):
    stub = external_auth_pb2_grpc.AuthorizationStub(
        grpc.insecure_channel(throttled_server.grpc_address)
    )
    answers = []
    for n in range(LIMIT + 1):
        request = external_auth_pb2.CheckRequest()
        request.attributes.source.address.socket_address.address = f"198.51.100.{n + 1}"
        http_request = request.attributes.request.http
        http_request.method, http_request.path = "GET", "/v2/users/me/apps"
        http_request.headers.update({":path": "/v2/users/me/apps", "authorization": BAD})
        answers.append(stub.Check(request, timeout=30).denied_response)
    assert [a.status.code for a in answers] == [401] * LIMIT + [429]
    retry = {h.header.key: h.header.value for h in answers[-1].headers}["retry-after"]
    assert 1 <= int(retry) <= WINDOW
    assert json.loads(answers[-1].body)["status"]["code"] == codes.CONN_THROTTLED


def test_a_trusted_proxys_clients_are_counted_apart(throttled_server):
    """Behind a trusted proxy that sends X-Forwarded-For (the README's nginx does), one
    client's failures do not throttle the proxy's other clients."""
    ask = {"authorization": BAD, "x-original-method": "GET", "x-original-uri": "/v2/users/me/apps"}
    for _ in range(LIMIT):
        status, _, _ = get(
            throttled_server,
            PROXY,
            "/scopegate/v1/authorize",
            {**ask, "x-forwarded-for": "192.0.2.1"},
        )
        assert status == 401
    status, _, body = get(
        throttled_server, PROXY, "/scopegate/v1/authorize", {**ask, "x-forwarded-for": "192.0.2.1"}
    )
    assert (status, body["status"]["code"]) == (403, codes.CONN_THROTTLED)
    status, _, body = get(
        throttled_server, PROXY, "/scopegate/v1/authorize", {**ask, "x-forwarded-for": "192.0.2.2"}
    )
    assert (status, body["status"]["code"]) == (401, codes.CONN_KEY_INVALID)
