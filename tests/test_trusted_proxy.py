"""Whose `X-Forwarded-For` is believed: nobody's unless `--trusted-proxy` says so. The
address it yields is the one the audit log records and the login throttles count."""

from __future__ import annotations

import http.client
import ipaddress
import json

import pytest
from clarifai_grpc.grpc.api import service_pb2

from scopegate.transports.rest.forwarded import client_address
from tests.support.api import me, ok
from tests.support.clients import make_stub, new_id
from tests.support.server_process import ServerProcess

PASSWORD = "tr0ub4dor&3xyz"


def start(tmp_path_factory, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    # Forwarding is decided in the HTTP layer, before any database: SQLite alone is enough.
    return ServerProcess(
        data_dir=tmp_path_factory.mktemp("scopegate-proxy"),
        database_url=None,
        extra_args=list(args),
        extra_env=env or {},
    ).start()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    process = start(tmp_path_factory)
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory):
    process = start(tmp_path_factory, "--trusted-proxy", "127.0.0.1/32")
    yield process
    assert process.stop() == 0, process.log()


def login(server: ServerProcess, email: str, forwarded_for: list[str]) -> int:
    """HTTP status of a right-password `POST /v2/login` from 127.0.0.1 with these headers."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        connection.putrequest("POST", "/v2/login")
        body = json.dumps({"email": email, "password": PASSWORD}).encode()
        connection.putheader("content-type", "application/json")
        connection.putheader("content-length", str(len(body)))
        for value in forwarded_for:
            connection.putheader("x-forwarded-for", value)
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def login_addresses(server: ServerProcess, forwarded_for: list[str]) -> list[str]:
    """The source IPs of the audit log's `login` entries of a new user after one login."""
    user_id = new_id()
    pat = server.create_user(user_id, password=PASSWORD)
    assert login(server, f"{user_id}@example.com", forwarded_for) == 200
    entries = ok(
        make_stub(server, "grpc").PostAuditLogSearches(
            service_pb2.PostAuditLogSearchesRequest(user_app_id=me()),
            metadata=(("authorization", f"Key {pat}"),),
        )
    ).entries
    return [e.source_ip for e in entries if e.description == "login"]


def test_forwarded_for_is_ignored_without_a_trusted_proxy(plain_server):
    assert login_addresses(plain_server, ["203.0.113.7"]) == ["127.0.0.1"]


def test_a_trusted_proxy_names_the_client(proxied_server):
    assert login_addresses(proxied_server, ["203.0.113.7"]) == ["203.0.113.7"]
    # What the client wrote left of the proxy's own entry is not believed.
    forged = ["198.51.100.9, 203.0.113.8", "203.0.113.9"]
    assert login_addresses(proxied_server, forged) == ["203.0.113.9"]


def test_trusted_proxies_from_the_environment(tmp_path_factory):
    server = start(tmp_path_factory, env={"SCOPEGATE_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.0/8"})
    try:
        # 127.0.0.5 is a trusted hop too: the client is the address before it.
        assert login_addresses(server, ["203.0.113.7, 127.0.0.5"]) == ["203.0.113.7"]
    finally:
        assert server.stop() == 0, server.log()


def test_a_bad_trusted_proxy_stops_the_server(tmp_path_factory):
    result = ServerProcess(
        data_dir=tmp_path_factory.mktemp("scopegate-proxy"), database_url=None
    ).cli("serve", "--trusted-proxy", "not-a-network", "--http-port", "0", "--grpc-port", "0")
    assert result.returncode != 0
    assert "not-a-network" in result.stdout + result.stderr


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    "peer, hops, expected",
    [
        ("192.0.2.1", ["203.0.113.7"], "192.0.2.1"),  # untrusted peer: header ignored
        ("10.1.1.1", ["203.0.113.7"], "203.0.113.7"),
        ("10.1.1.1", ["198.51.100.1", "203.0.113.7", "10.2.2.2"], "203.0.113.7"),
        ("10.1.1.1", ["10.3.3.3", "10.2.2.2"], "10.3.3.3"),  # all trusted: the first
        ("10.1.1.1", ["unknown"], "10.1.1.1"),  # garbage: the last address we can name
        ("10.1.1.1", ["203.0.113.7:4711"], "203.0.113.7"),
        ("fd00::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("::ffff:10.1.1.1", ["2001:db8::8"], "2001:db8::8"),
        ("10.1.1.1", [], "10.1.1.1"),
    ],
)
def test_client_address(peer, hops, expected):
    assert client_address(peer, hops, TRUSTED) == expected
