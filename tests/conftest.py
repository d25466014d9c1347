"""Fixtures: real servers on SQLite and PostgreSQL, and official clients on both transports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clients import TRANSPORTS, Client, make_stub, new_id
from tests.support.images import HttpsImageHosts
from tests.support.server_process import ServerProcess
from tests.support.servers import BACKENDS, start_server
from tests.support.tls import Certificate

# The `services` fixture (services opened in process on a SQLite file) and the portal
# tests' server, browser and signed-up accounts.
pytest_plugins = ("tests.support.in_process", "tests.support.portal_fixtures")

# Started first: the schemathesis run takes minutes on its own (its two subprocesses fill
# both cores), and collected last it kept one worker busy long after the other was done.
LONGEST_FIRST = frozenset({"tests/test_openapi.py::test_schemathesis_with_a_pat_and_with_none"})
# Then the files that take longest (pytest's --durations in CI), so that the two workers
# finish together; the rest in collection order. xdist keeps this order of files because
# pyproject.toml passes --no-loadscope-reorder (by default it orders files by their number
# of tests, which put the schemathesis file, four tests, last).
SLOWEST_FILES = (
    "tests/test_openapi.py",
    "tests/test_cli_orgs.py",
    "tests/test_authorization_matrix.py",
    "tests/test_cli_admin.py",
    "tests/test_lifecycle.py",
    "tests/test_portal.py",
)


def _start_rank(item: pytest.Item) -> tuple[int, bool]:
    path = item.nodeid.partition("::")[0]
    rank = SLOWEST_FILES.index(path) if path in SLOWEST_FILES else len(SLOWEST_FILES)
    return rank, item.nodeid not in LONGEST_FIRST


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_rank)  # stable: the rest in order


@pytest.fixture(scope="session")
def postgres_cluster():
    from tests.support import postgres

    reason = postgres.available()
    if reason:
        pytest.skip(f"PostgreSQL unavailable: {reason}")
    with postgres.PostgresCluster() as cluster:
        yield cluster


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
