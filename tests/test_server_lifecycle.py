"""Starting, serving gRPC health and reflection, and stopping gracefully."""

from __future__ import annotations

import signal
import socket
import time

import grpc
import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.clients import make_stub
from tests.support.server_process import ServerProcess, scopegate


def test_grpc_health_and_reflection(server):
    channel = grpc.insecure_channel(server.grpc_address)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "clarifai.api.V2"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(
        reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
    )
    names = {s.name for s in replies[0].list_services_response.service}
    assert "clarifai.api.V2" in names
    channel.close()


def _start(tmp_path, ports: str) -> ServerProcess:
    one_port = ports == "one port"  # `serve --port`: the gRPC connection is piped in process
    return ServerProcess(data_dir=tmp_path / "data", database_url=None, one_port=one_port).start()


PORTS = ["two ports", "one port"]


@pytest.mark.parametrize("ports", PORTS)
def test_sigterm_finishes_in_flight_rest_request_then_exits_0(tmp_path, ports):
    server = _start(tmp_path, ports)
    body = b'{"status_code_id": "10000"}'
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(
            b"GET /v2/status_codes/10000 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:5]
        )
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.process.poll() is None, "exited with a request in flight"
        sock.sendall(body[5:])
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 200"), reply
    assert server.process.wait(30) == 0
    log = server.log()
    assert "shutting down" in log and "stopped" in log


@pytest.mark.parametrize("ports", PORTS)
def test_sigint_finishes_in_flight_grpc_stream_then_exits_0(tmp_path, ports):
    server = _start(tmp_path, ports)
    stub = make_stub(server, "grpc")
    sent = []

    def requests():
        # The stream is open before the signal; its only message comes after it.
        time.sleep(0.5)
        server.process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        sent.append(True)
        yield service_pb2.PostModelVersionsUploadRequest()

    replies = list(
        stub.PostModelVersionsUpload(
            requests(), metadata=(("authorization", "Key sgp_nope"),), timeout=30
        )
    )
    assert sent and replies[0].status.code == codes.CONN_KEY_INVALID
    assert server.process.wait(30) == 0


def test_serve_refuses_a_busy_port_clearly(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = scopegate(
            "serve", "--data-dir", str(tmp_path), "--http-port", str(port), "--grpc-port", "0"
        )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert str(port) in result.stderr + result.stdout
