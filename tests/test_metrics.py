"""GET /metrics on a real server: a known mix of allowed and refused calls over gRPC (the
official stub) and REST (requests), then the exposition scraped and parsed with
prometheus_client's own parser, and every count checked against the mix.

Expected counts are written from the issue's list (requests by transport, method and code;
authentication and authorization outcomes by kind; caches; change log; database), not read
off the implementation.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import requests
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import make_stub, new_id
from tests.support.server_process import ServerProcess, free_port

FAILURE_LIMIT = 10  # failed authentications from one address before CONN_THROTTLED


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one scrape."""
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("metrics"),
        database_url=None,
        extra_env={
            "SCOPEGATE_AUTH_FAILURE_LIMIT": str(FAILURE_LIMIT),
            "SCOPEGATE_AUTH_FAILURE_DELAY_SECONDS": "0",
        },
    ).start()
    yield process
    process.stop()


def _rest(server, method: str, path: str, secret: str | None, body: dict | None = None):
    headers = {"authorization": f"Key {secret}"} if secret is not None else {}
    return requests.request(method, server.http_url + path, headers=headers, json=body, timeout=30)


def test_a_known_mix_is_counted_by_transport_method_code_and_outcome(server):
    alice, bob = new_id("alice"), new_id("bob")
    alice_pat, bob_pat = server.create_user(alice), server.create_user(bob)
    app_id = new_id("app")
    made = _rest(server, "POST", "/v2/users/me/apps", alice_pat, {"apps": [{"id": app_id}]})
    assert made.status_code == 200, made.text
    # A PAT that may only read apps, and one that expires in a moment.
    narrow = _rest(
        server,
        "POST",
        "/v2/users/me/keys",
        alice_pat,
        {
            "keys": [
                {"description": "narrow", "scopes": ["Apps_Get"], "type": "personal_access_token"}
            ]
        },
    )
    assert narrow.status_code == 200, narrow.text
    narrow_pat = narrow.json()["keys"][0]["id"]
    soon = datetime.now(UTC) + timedelta(seconds=3)
    expiring = _rest(
        server,
        "POST",
        "/v2/users/me/keys",
        alice_pat,
        {
            "keys": [
                {
                    "description": "soon",
                    "scopes": ["All"],
                    "type": "personal_access_token",
                    "expires_at": soon.isoformat().replace("+00:00", "Z"),
                }
            ]
        },
    )
    assert expiring.status_code == 200, expiring.text
    expiring_pat = expiring.json()["keys"][0]["id"]
    before = scrape(f"{server.http_url}/metrics")

    # REST: 3 allowed MyScopes, an unknown secret twice (the gate), no header once.
    for _ in range(3):
        assert _rest(server, "GET", "/v2/myscopes", alice_pat).status_code == 200
    for _ in range(2):
        assert _rest(server, "GET", "/v2/myscopes", "f" * 32).status_code == 401
    assert _rest(server, "GET", "/v2/myscopes", None).status_code == 401
    # Another user's app: not visible (404); a read-only PAT creating an app: 403.
    path = f"/v2/users/{alice}/apps/{app_id}"
    assert _rest(server, "GET", path, bob_pat).status_code == 404
    refused = _rest(server, "POST", "/v2/users/me/apps", narrow_pat, {"apps": [{"id": "x1"}]})
    assert refused.status_code == 403, refused.text
    # The expiring key, used while valid, then after its expiry.
    assert _rest(server, "GET", "/v2/myscopes", expiring_pat).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)
    assert _rest(server, "GET", "/v2/myscopes", expiring_pat).status_code == 401
    # gRPC through the official stub: 2 allowed, 1 unknown secret, 1 NoAuth.
    stub = make_stub(server, "grpc")
    mine = (("authorization", f"Key {alice_pat}"),)
    for _ in range(2):
        reply = stub.MyScopes(service_pb2.MyScopesRequest(), metadata=mine)
        assert reply.status.code == codes.SUCCESS
    reply = stub.MyScopes(service_pb2.MyScopesRequest(), metadata=(("authorization", "Key nope"),))
    assert reply.status.code == codes.CONN_KEY_INVALID
    reply = stub.GetStatusCode(
        service_pb2.GetStatusCodeRequest(status_code_id="10000"), metadata=mine
    )
    assert reply.status.code == codes.SUCCESS

    after = scrape(f"{server.http_url}/metrics")

    def grew(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests_total = "scopegate_requests_total"
    assert grew(requests_total, transport="rest", method="MyScopes", code="SUCCESS") == 4
    assert grew(requests_total, transport="rest", method="MyScopes", code="CONN_KEY_INVALID") == 3
    assert (
        grew(requests_total, transport="rest", method="MyScopes", code="CONN_INVALID_REQUEST") == 1
    )
    assert grew(requests_total, transport="rest", method="GetApp", code="CONN_DOES_NOT_EXIST") == 1
    assert (
        grew(requests_total, transport="rest", method="PostApps", code="CONN_INSUFFICIENT_SCOPES")
        == 1
    )
    assert grew(requests_total, transport="grpc", method="MyScopes", code="SUCCESS") == 2
    assert grew(requests_total, transport="grpc", method="MyScopes", code="CONN_KEY_INVALID") == 1
    assert grew(requests_total, transport="grpc", method="GetStatusCode", code="SUCCESS") == 1
    # The latency histogram saw each request once, in its buckets and its count.
    count = "scopegate_request_duration_seconds_count"
    assert grew(count, transport="rest", method="MyScopes") == 8
    assert grew(count, transport="grpc", method="MyScopes") == 3
    infinite = grew(
        "scopegate_request_duration_seconds_bucket", transport="rest", method="MyScopes", le="+Inf"
    )
    assert infinite == 8
    assert grew("scopegate_request_duration_seconds_sum", transport="rest", method="MyScopes") > 0

    outcomes = "scopegate_auth_outcomes_total"
    assert grew(outcomes, outcome="allowed") == 4 + 2  # REST 4 (3 + the expiring key), gRPC 2
    assert grew(outcomes, outcome="invalid") == 3
    assert grew(outcomes, outcome="malformed") == 1
    assert grew(outcomes, outcome="expired") == 1
    assert grew(outcomes, outcome="not_visible") == 1
    assert grew(outcomes, outcome="insufficient_scopes") == 1
    assert grew(outcomes, outcome="throttled") == 0

    # Repeats of one allowed call are remembered decisions (three in a row: two at least,
    # whatever evictions the keys made above caused); credentials come from memory.
    caches = "scopegate_cache_requests_total"
    assert grew(caches, cache="decisions", result="hit") >= 2
    assert grew(caches, cache="decisions", result="miss") >= 1
    assert grew(caches, cache="authentication", result="miss") >= 1
    assert value(after, caches, cache="relations", result="miss") >= 1
    assert grew("scopegate_db_queries_total", statement="select") >= 1
    lag = value(after, "scopegate_change_log_lag_seconds")
    assert 0 <= lag < 5
    assert "process_cpu_seconds_total" in after  # one process: its own collectors too


def test_throttled_authentications_are_counted_as_throttled(server):
    before = scrape(f"{server.http_url}/metrics")
    stub = make_stub(server, "grpc")
    answers = [
        stub.MyScopes(
            service_pb2.MyScopesRequest(), metadata=(("authorization", "Key nope"),)
        ).status.code
        for _ in range(FAILURE_LIMIT + 3)
    ]
    assert codes.CONN_THROTTLED in answers
    after = scrape(f"{server.http_url}/metrics")
    throttled = value(after, "scopegate_auth_outcomes_total", outcome="throttled") - value(
        before, "scopegate_auth_outcomes_total", outcome="throttled"
    )
    assert throttled == answers.count(codes.CONN_THROTTLED)
    assert (
        value(
            after,
            "scopegate_requests_total",
            transport="grpc",
            method="MyScopes",
            code="CONN_THROTTLED",
        )
        - value(
            before,
            "scopegate_requests_total",
            transport="grpc",
            method="MyScopes",
            code="CONN_THROTTLED",
        )
        == throttled
    )


def test_garbage_protobuf_over_grpc_is_counted_and_numbered(server):
    channel = grpc.insecure_channel(server.grpc_address)
    call = channel.unary_unary("/clarifai.api.V2/MyScopes")
    before = scrape(f"{server.http_url}/metrics")
    raw, meta = call.with_call(b"\xff\xff\xff", metadata=(("authorization", "Key x"),))
    reply = service_pb2.MultiScopeResponse.FromString(raw)
    assert reply.status.code == codes.CONN_BAD_REQUEST_FORMAT
    assert dict(meta.initial_metadata())["x-request-id"] == reply.status.req_id != ""
    after = scrape(f"{server.http_url}/metrics")
    labels = {"transport": "grpc", "method": "MyScopes", "code": "CONN_BAD_REQUEST_FORMAT"}
    assert (
        value(after, "scopegate_requests_total", **labels)
        - value(before, "scopegate_requests_total", **labels)
        == 1
    )
    channel.close()


def test_metrics_on_an_address_of_their_own(tmp_path):
    port = free_port()
    process = ServerProcess(
        data_dir=tmp_path, database_url=None, extra_args=["--metrics-address", f"127.0.0.1:{port}"]
    ).start()
    try:
        pat = process.create_user(new_id())
        assert _rest(process, "GET", "/v2/myscopes", pat).status_code == 200
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert (
            value(
                samples,
                "scopegate_requests_total",
                transport="rest",
                method="MyScopes",
                code="SUCCESS",
            )
            == 1
        )
        # Not on the HTTP port then: an operator keeps it off the public address.
        assert requests.get(f"{process.http_url}/metrics", timeout=10).status_code == 404
        assert f"metrics on http://127.0.0.1:{port}/metrics" in process.log()
    finally:
        process.stop()


def test_metrics_can_be_turned_off(tmp_path):
    process = ServerProcess(
        data_dir=tmp_path, database_url=None, extra_env={"SCOPEGATE_METRICS": "off"}
    ).start()
    try:
        assert requests.get(f"{process.http_url}/metrics", timeout=10).status_code == 404
        assert requests.get(f"{process.http_url}/readyz", timeout=10).status_code == 200
    finally:
        process.stop()


def test_multiprocess_mode_reads_every_process_files(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR set (as `serve --workers` sets it for its workers), the
    values live in that directory's files and a scrape adds up every process's."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    servers = [
        ServerProcess(
            data_dir=tmp_path / "data",
            database_url=None,
            extra_env={"PROMETHEUS_MULTIPROC_DIR": str(shared)},
        )
        for _ in range(2)
    ]
    try:
        servers[0].start()
        servers[1].start()
        pat = servers[0].create_user(new_id())
        calls = {0: 3, 1: 2}
        for index, count in calls.items():
            for _ in range(count):
                assert _rest(servers[index], "GET", "/v2/myscopes", pat).status_code == 200
        assert any(path.name.startswith("counter_") for path in shared.iterdir())
        for process in servers:  # either one answers for both
            samples = scrape(f"{process.http_url}/metrics")
            assert (
                value(
                    samples,
                    "scopegate_requests_total",
                    transport="rest",
                    method="MyScopes",
                    code="SUCCESS",
                )
                == 5
            )
            assert "process_cpu_seconds_total" not in samples  # per-process: left out
    finally:
        for process in servers:
            process.stop()


def test_serve_workers_one_scrape_sees_every_worker(tmp_path):
    process = ServerProcess(data_dir=tmp_path, database_url=None, extra_args=["--workers", "2"])
    process.start()
    try:
        pat = process.create_user(new_id())
        total = 40
        for _ in range(total):  # a new connection each: the kernel spreads them over workers
            with requests.Session() as session:
                reply = session.get(
                    f"{process.http_url}/v2/myscopes",
                    headers={"authorization": f"Key {pat}"},
                    timeout=30,
                )
                assert reply.status_code == 200
        for _ in range(6):
            with requests.Session() as session:
                reply = session.get(f"{process.http_url}/metrics", timeout=10)
            samples = {
                sample.name: sample
                for family in text_string_to_metric_families(reply.text)
                for sample in family.samples
                if sample.labels.get("method") == "MyScopes"
                and sample.labels.get("code") == "SUCCESS"
            }
            assert samples["scopegate_requests_total"].value == total
    finally:
        process.stop()


def test_calls_forwarded_upstream_are_counted(tmp_path):
    """With `serve --upstream`, the unary calls handed to forwarding are counted by method
    and the status answered (the upstream's own, in band); a refused call never went."""
    from tests.support.upstream import TestUpstream, list_workflows

    upstream = TestUpstream().start()
    process = None
    try:
        process = ServerProcess(
            data_dir=tmp_path, database_url=None, extra_args=["--upstream", upstream.address]
        ).start()
        alice, mallory = new_id("alice"), new_id("mallory")
        alice_pat, mallory_pat = process.create_user(alice), process.create_user(mallory)
        app_id = new_id("app")
        made = _rest(process, "POST", "/v2/users/me/apps", alice_pat, {"apps": [{"id": app_id}]})
        assert made.status_code == 200, made.text
        stub = make_stub(process, "grpc")
        request = list_workflows(user_id=alice, app_id=app_id)
        assert (
            stub.ListWorkflows(
                request, metadata=(("authorization", f"Key {alice_pat}"),)
            ).status.code
            == codes.SUCCESS
        )
        request.per_page = 13  # the test upstream refuses it, in band
        answer = stub.ListWorkflows(request, metadata=(("authorization", f"Key {alice_pat}"),))
        assert answer.status.code == codes.WORKFLOW_INVALID_REQUEST
        refused = stub.ListWorkflows(
            list_workflows(user_id=alice, app_id=app_id),
            metadata=(("authorization", f"Key {mallory_pat}"),),
        )
        assert refused.status.code == codes.CONN_DOES_NOT_EXIST
        samples = scrape(f"{process.http_url}/metrics")
        upstream_total = "scopegate_upstream_requests_total"
        assert value(samples, upstream_total, method="ListWorkflows", code="SUCCESS") == 1
        assert (
            value(samples, upstream_total, method="ListWorkflows", code="WORKFLOW_INVALID_REQUEST")
            == 1
        )
        assert (
            value(samples, upstream_total, method="ListWorkflows", code="CONN_DOES_NOT_EXIST") == 0
        )
        assert (
            value(samples, "scopegate_upstream_duration_seconds_count", method="ListWorkflows") == 2
        )
        # Local methods are not upstream calls.
        assert all(
            labels_method == "ListWorkflows"
            for labels in samples.get(upstream_total, {})
            for key, labels_method in labels
            if key == "method"
        )
    finally:
        if process is not None:
            process.stop()
        upstream.stop()
