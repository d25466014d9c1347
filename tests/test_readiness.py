"""Readiness on a real server: /readyz answers 200 and the gRPC health service SERVING while
the database answers; with its PostgreSQL server stopped, /readyz answers 503 and health
NOT_SERVING, while /healthz (liveness) still answers 200."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.server_process import ServerProcess

SERVICES = ("", "clarifai.api.V2")


def health_status(server: ServerProcess, service: str) -> int:
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_ready_while_the_database_answers(tmp_path):
    process = ServerProcess(data_dir=tmp_path, database_url=None).start()
    try:
        reply = requests.get(f"{process.http_url}/readyz", timeout=10)
        assert (reply.status_code, reply.json()) == (200, {"status": "ready"})
        for service in SERVICES:
            assert health_status(process, service) == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert process.stop() == 0


def test_not_ready_when_postgresql_stops(tmp_path):
    from tests.support import postgres

    reason = postgres.available()
    if reason:
        pytest.skip(f"PostgreSQL unavailable: {reason}")
    # A cluster of its own: stopping the session's would take every other test down.
    cluster = postgres.PostgresCluster().start()
    process = None
    try:
        url = cluster.create_database(f"sg_{uuid.uuid4().hex[:12]}")
        process = ServerProcess(data_dir=tmp_path, database_url=url).start()
        assert requests.get(f"{process.http_url}/readyz", timeout=10).status_code == 200
        assert health_status(process, "") == health_pb2.HealthCheckResponse.SERVING

        cluster.stop()  # the database stops answering

        reply = requests.get(f"{process.http_url}/readyz", timeout=10)
        assert reply.status_code == 503
        body = reply.json()
        assert body["status"] == "not ready" and "database" in body["failing"]
        assert url not in reply.text  # no connection details in the answer
        for service in SERVICES:  # the background check follows within its interval
            assert wait_for(
                lambda service=service: (
                    health_status(process, service) == health_pb2.HealthCheckResponse.NOT_SERVING
                )
            ), service
        # Liveness is another question: the process runs.
        assert requests.get(f"{process.http_url}/healthz", timeout=10).status_code == 200
        assert "not ready: database" in process.log()
    finally:
        if process is not None:
            process.stop()
        cluster.stop()


@pytest.mark.parametrize("policy", ["closed", "open"])
def test_redis_when_configured(tmp_path, policy):
    """With rate limits shared through Redis: `closed` refuses limited requests without it,
    so the server is not ready while Redis does not answer; `open` serves on, counting in
    process, so it stays ready and /readyz says what is degraded."""
    from tests.support import redis_server

    reason = redis_server.available()
    if reason:
        pytest.skip(reason)
    redis = redis_server.RedisServer(tmp_path / "redis").start()
    process = None
    try:
        process = ServerProcess(
            data_dir=tmp_path / "data",
            database_url=None,
            extra_args=["--redis-url", redis.url, "--limits-on-store-failure", policy],
        ).start()
        reply = requests.get(f"{process.http_url}/readyz", timeout=10)
        assert (reply.status_code, reply.json()) == (200, {"status": "ready"})

        redis.stop()

        reply = requests.get(f"{process.http_url}/readyz", timeout=10)
        body = reply.json()
        assert "redis" in body["failing"] and "database" not in body["failing"]
        if policy == "closed":
            assert (reply.status_code, body["status"]) == (503, "not ready")
            expected = health_pb2.HealthCheckResponse.NOT_SERVING
        else:
            assert (reply.status_code, body["status"]) == (200, "degraded")
            expected = health_pb2.HealthCheckResponse.SERVING
        time.sleep(2.5)  # a background check ran since
        assert health_status(process, "") == expected
    finally:
        if process is not None:
            process.stop()
        redis.stop()
