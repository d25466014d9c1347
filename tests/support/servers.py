"""Starting the suite's servers: one per database backend, with the test environment."""

from __future__ import annotations

import uuid

from tests.support.server_process import ServerProcess
from tests.support.tls import Certificate

BACKENDS = ["sqlite", "postgres"]
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


def start_server(
    request,
    tmp_path_factory,
    backend: str,
    tls: Certificate | None = None,
    one_port: bool = False,  # `serve --port`: gRPC and HTTP on one port
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
    return ServerProcess(
        data_dir=data_dir, database_url=url, extra_env=env, tls=tls, one_port=one_port
    ).start()
