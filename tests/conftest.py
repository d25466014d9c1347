"""Fixtures: real servers on SQLite and PostgreSQL, and official clients on both transports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2_grpc

from tests.server_process import ServerProcess
from tests.support.images import HttpsImageHosts
from tests.support.tls import Certificate

# The `services` fixture: services opened in process on a SQLite file.
pytest_plugins = ("tests.support.in_process",)

BACKENDS = ["sqlite", "postgres"]
TRANSPORTS = ["grpc", "json"]
# Test servers fetch images from loopback HTTP servers the tests start, with limits small
# enough that "too large" and "too slow" take a moment.
SERVER_ENV = {
    # The shared servers see thousands of deliberate failures from 127.0.0.1: count them,
    # but never throttle (test_auth_throttle.py has servers of its own for that).
    "SCOPEGATE_AUTH_FAILURE_LIMIT": "1000000",
    "SCOPEGATE_FETCH_PRIVATE_HOSTS": "1",
    "SCOPEGATE_MAX_IMAGE_BYTES": str(1024 * 1024),
    "SCOPEGATE_FETCH_TIMEOUT_SECONDS": "2",
}


@pytest.fixture(scope="session")
def postgres_cluster():
    from tests.support import postgres

    reason = postgres.available()
    if reason:
        pytest.skip(f"PostgreSQL unavailable: {reason}")
    with postgres.PostgresCluster() as cluster:
        yield cluster


def start_server(
    request, tmp_path_factory, backend: str, tls: Certificate | None = None
) -> ServerProcess:
    data_dir = tmp_path_factory.mktemp(f"scopegate-{backend}")
    url = None
    if backend == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"sg_{uuid.uuid4().hex[:12]}")
    env = dict(SERVER_ENV)
    https_images = request.getfixturevalue("https_images")
    if https_images:
        env.update(https_images.server_env())
    return ServerProcess(data_dir=data_dir, database_url=url, extra_env=env, tls=tls).start()


@pytest.fixture(scope="session")
def https_images(tmp_path_factory) -> Iterator[HttpsImageHosts | None]:
    """HTTPS image servers whose test CA the servers `start_server` starts trust (through
    SSL_CERT_FILE), with samples.clarifai.com:443 connected to the good one; None without
    the openssl command."""
    from tests.support.images import https_image_hosts
    from tests.support.tls import openssl_missing

    if openssl_missing():
        yield None
        return
    with https_image_hosts(tmp_path_factory.mktemp("https-images")) as hosts:
        yield hosts


@pytest.fixture
def https_image_base(https_images) -> str:
    """Base URL of the HTTPS image server the test servers trust."""
    if https_images is None:
        pytest.skip("the openssl command is not installed")
    return https_images.base


@pytest.fixture(scope="session", params=BACKENDS)
def server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    """One long-running server per database backend, shared by the session."""
    process = start_server(request, tmp_path_factory, request.param)
    yield process
    code = process.stop()
    assert code == 0, process.log()


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory) -> Certificate:
    """A throwaway self-signed certificate for localhost and 127.0.0.1."""
    from tests.support.tls import openssl_missing, self_signed

    reason = openssl_missing()
    if reason:
        pytest.skip(reason)
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session", params=BACKENDS)
def tls_server(request, tmp_path_factory, tls_certificate) -> Iterator[ServerProcess]:
    """A server per backend started with --tls-cert/--tls-key (its addresses name localhost)."""
    process = start_server(request, tmp_path_factory, request.param, tls=tls_certificate)
    yield process
    code = process.stop()
    assert code == 0, process.log()


def new_id(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class Client:
    """An official V2 stub plus the metadata helpers tests use."""

    transport: str
    stub: service_pb2_grpc.V2Stub

    @staticmethod
    def auth(secret: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Key {secret}"),)


def trust_only(session, cert) -> None:
    """Make a requests session trust `cert` alone. Not from the environment: requests lets
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, when set, override the session's own setting."""
    session.verify = str(cert)
    session.trust_env = False


def make_stub(server: ServerProcess, transport: str) -> service_pb2_grpc.V2Stub:
    # The official stub captures the channel kind when built: build it right after its channel.
    # A TLS server's stubs trust its certificate, as users of a private CA configure them.
    if transport == "grpc":
        if server.tls:
            channel = ClarifaiChannel.get_grpc_channel(
                base=server.grpc_address, root_certificates_path=str(server.tls.cert)
            )
            return service_pb2_grpc.V2Stub(channel)
        host, port = server.grpc_address.split(":")
        channel = ClarifaiChannel.get_insecure_grpc_channel(base=host, port=int(port))
        return service_pb2_grpc.V2Stub(channel)
    channel = ClarifaiChannel.get_json_channel(base_url=server.http_url)
    if server.tls:
        trust_only(channel.session, server.tls.cert)
    return service_pb2_grpc.V2Stub(channel)


@pytest.fixture(params=TRANSPORTS)
def client(request, server) -> Client:
    return Client(request.param, make_stub(server, request.param))


@pytest.fixture
def user(server) -> tuple[str, str]:
    """A fresh user: (user_id, default PAT)."""
    user_id = new_id()
    return user_id, server.create_user(user_id)


@pytest.fixture(scope="session")
def image_base() -> Iterator[str]:
    """Base URL of a loopback HTTP server with images (tests.support.images)."""
    from tests.support.images import image_server

    with image_server() as base:
        yield base
