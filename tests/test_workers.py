"""`scopegate serve --workers N`: N processes share the gRPC and HTTP ports under one parent.

Which worker holds a connection is read from the kernel's socket tables (/proc/net/tcp and
each worker's file descriptors), so the server exposes nothing for it."""

from __future__ import annotations

import http.client as httpc
import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import grpc
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.server import workers as supervision
from tests.support.api import http
from tests.support.clients import new_id
from tests.support.server_process import ServerProcess, scopegate

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")

BOUND_SECONDS = 1.0  # the change log's poll (0.25 s) with a margin, as test_multi_instance
SERVING = re.compile(r"scopegate: worker (\d+) \(pid (\d+)\) serving")


# --------------------------------------------------------------------- the process tree


def children(parent: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(entry))
    return found


def serving(server: ServerProcess) -> dict[int, int]:
    """{worker index: pid} of the workers that announced themselves and are still children."""
    live = children(server.process.pid)
    return {int(i): int(pid) for i, pid in SERVING.findall(server.log()) if int(pid) in live}


def wait_for_workers(server: ServerProcess, count: int, timeout: float = 30.0) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = serving(server)
        if len(found) == count and set(found.values()) == children(server.process.pid):
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} workers not serving in {timeout}s:\n{server.log()}")


def _tcp_sockets() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every TCP socket, IPv4 and IPv6."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            next(handle)
            for line in handle:
                parts = line.split()
                local, remote, state, inode = parts[1], parts[2], parts[3], int(parts[9])
                rows.append(
                    (int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state, inode)
                )
    return rows


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


ESTABLISHED = "01"


def _held_inodes(worker: int) -> set[int]:
    """The sockets a worker serves: its own, and its relay process's (a one-port worker
    hands plaintext gRPC connections to a child process that relays them)."""
    inodes = _socket_inodes(worker)
    for child in children(worker):
        inodes |= _socket_inodes(child)
    return inodes


def connections_by_worker(pids: list[int], port: int) -> dict[int, int]:
    """How many established connections to `port` each worker holds."""
    accepted = {inode for lp, _, st, inode in _tcp_sockets() if lp == port and st == ESTABLISHED}
    return {pid: len(_held_inodes(pid) & accepted) for pid in pids}


def owner_of(client_port: int, port: int, pids: list[int]) -> int:
    """The worker holding the server side of the connection from `client_port`."""
    (inode,) = [
        inode
        for lp, rp, st, inode in _tcp_sockets()
        if lp == port and rp == client_port and st == ESTABLISHED
    ]
    (pid,) = [pid for pid in pids if inode in _held_inodes(pid)]
    return pid


# --------------------------------------------------------------------------- requests


def _get(conn: httpc.HTTPConnection, path: str, secret: str) -> int:
    """A keep-alive GET on `conn`; the Clarifai status code."""
    conn.request("GET", path, headers={"authorization": f"Key {secret}"})
    reply = conn.getresponse()
    return json.loads(reply.read())["status"]["code"]


def _open(server: ServerProcess) -> httpc.HTTPConnection:
    conn = httpc.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    conn.connect()
    return conn


def _grpc_stub(server: ServerProcess) -> tuple[grpc.Channel, service_pb2_grpc.V2Stub]:
    """An official stub on a channel of its own: a local subchannel pool, so a connection of
    its own, not one shared with every channel to the same address."""
    host, port = server.grpc_address.split(":")
    ClarifaiChannel.get_insecure_grpc_channel(base=host, port=int(port)).close()  # gRPC mode
    channel = grpc.insecure_channel(
        server.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)]
    )
    return channel, service_pb2_grpc.V2Stub(channel)


def _my_scopes(stub: service_pb2_grpc.V2Stub, secret: str) -> int:
    reply = stub.MyScopes(
        service_pb2.MyScopesRequest(), metadata=(("authorization", f"Key {secret}"),), timeout=10
    )
    return reply.status.code


def _spread(server: ServerProcess, pat: str, pids: list[int], count: int = 24) -> None:
    """`count` new connections on each transport all answer, and every worker holds some."""
    conns = [_open(server) for _ in range(count)]
    channels = [_grpc_stub(server) for _ in range(count)]
    try:
        for conn in conns:
            assert _get(conn, "/v2/myscopes", pat) == codes.SUCCESS
        for _, stub in channels:
            assert _my_scopes(stub, pat) == codes.SUCCESS
        ports = [server.http_port, server.grpc_port]
        for port in set(ports):  # one port (--port): both transports' connections on it
            held = connections_by_worker(pids, port)
            assert sum(held.values()) == count * ports.count(port), held  # each found once
            assert all(held.values()), f"a worker took no connection on port {port}: {held}"
    finally:
        for conn in conns:
            conn.close()
        for channel, _ in channels:
            channel.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("workers"),
        database_url=None,
        extra_args=["--workers", "2"],
    ).start()
    wait_for_workers(process, 2)
    yield process
    assert process.stop() == 0


def test_both_transports_are_served_by_every_worker(server):
    pat = server.create_user(new_id())
    pids = sorted(wait_for_workers(server, 2).values())
    assert len(set(pids)) == 2 and server.process.pid not in pids
    _spread(server, pat, pids)


def test_a_revocation_on_one_worker_reaches_the_other_within_the_bound(server):
    pat = server.create_user(new_id())
    pids = list(wait_for_workers(server, 2).values())
    status, body = http(
        server,
        "POST",
        "/v2/users/me/keys",
        headers={"authorization": f"Key {pat}"},
        body={"keys": [{"type": "personal_access_token", "scopes": ["All"]}]},
    )
    assert status == 200, body
    secret = body["keys"][0]["id"]
    # One keep-alive connection held by each worker.
    by_worker: dict[int, httpc.HTTPConnection] = {}
    spare = []
    while len(by_worker) < 2:
        conn = _open(server)
        assert _get(conn, "/v2/myscopes", pat) == codes.SUCCESS  # accepted by now
        pid = owner_of(conn.sock.getsockname()[1], server.http_port, pids)
        if pid in by_worker:
            spare.append(conn)
        else:
            by_worker[pid] = conn
        assert len(spare) < 40, "the kernel never spread connections"
    first, second = by_worker.values()
    try:
        for conn in (first, second):  # cached by both workers
            assert _get(conn, "/v2/myscopes", secret) == codes.SUCCESS
        public_id = _public_id(first, pat, secret)
        headers = {"authorization": f"Key {pat}", "content-type": "application/json"}
        first.request("DELETE", f"/v2/users/me/keys/{public_id}", body="{}", headers=headers)
        assert json.loads(first.getresponse().read())["status"]["code"] == codes.SUCCESS
        deleted_at = time.monotonic()
        assert _get(first, "/v2/myscopes", secret) == codes.CONN_KEY_INVALID  # at once
        while _get(second, "/v2/myscopes", secret) == codes.SUCCESS:
            assert time.monotonic() - deleted_at <= BOUND_SECONDS, "still served by the other"
            time.sleep(0.02)
        assert _get(second, "/v2/myscopes", pat) == codes.SUCCESS  # only that key is gone
    finally:
        for conn in (first, second, *spare):
            conn.close()


def _public_id(conn: httpc.HTTPConnection, pat: str, secret: str) -> str:
    conn.request("GET", f"/v2/users/me/keys/{secret}", headers={"authorization": f"Key {pat}"})
    return json.loads(conn.getresponse().read())["key"]["id"]


def test_a_killed_worker_is_replaced_and_service_goes_on(server):
    pat = server.create_user(new_id())
    before = wait_for_workers(server, 2)
    index, victim = sorted(before.items())[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = serving(server)
        if now.get(index) not in (None, victim) and len(now) == 2:
            break
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert server.process.poll() is None  # the parent goes on
    assert now[1 - index] == before[1 - index]  # the other worker was left alone
    assert f"worker {index} (pid {victim}) exited (signal SIGKILL)" in server.log()
    _spread(server, pat, sorted(now.values()))


def test_sigterm_on_the_parent_stops_every_worker_and_exits_0(tmp_path):
    process = ServerProcess(data_dir=tmp_path, database_url=None, extra_args=["--workers", "2"])
    process.start()
    pids = list(wait_for_workers(process, 2).values())
    metrics_dirs = {
        entry.split("=", 1)[1]
        for pid in pids
        for entry in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
        if entry.startswith(f"{supervision.METRICS_DIR_ENV}=")
    }
    (metrics_dir,) = metrics_dirs  # one directory, shared by the workers
    assert Path(metrics_dir).is_dir()
    assert process.stop() == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived its parent"
    assert not Path(metrics_dir).exists()
    log = process.log()
    assert log.count("scopegate: worker") >= 4 and log.rstrip().endswith("scopegate: stopped")
    for port in (process.grpc_port, process.http_port):  # both ports released
        with socket.socket() as sock:
            # SO_REUSEADDR: closed connections' TIME_WAIT does not count; a listener would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


def test_auto_is_one_worker_per_usable_core_and_one_port_works_too(tmp_path):
    cores = len(os.sched_getaffinity(0))
    process = ServerProcess(
        data_dir=tmp_path, database_url=None, one_port=True, extra_env={"SCOPEGATE_WORKERS": "auto"}
    ).start()
    try:
        pids = sorted(wait_for_workers(process, cores).values())
        pat = process.create_user(new_id())
        if cores > 1:
            _spread(process, pat, pids)
        else:
            conn = _open(process)
            assert _get(conn, "/v2/myscopes", pat) == codes.SUCCESS
            conn.close()
    finally:
        assert process.stop() == 0


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "", "513"])
def test_a_bad_worker_count_is_refused_in_one_line(tmp_path, value):
    result = scopegate("serve", "--workers", value, "--data-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "--workers" in result.stderr and "'auto'" in result.stderr
    assert "Traceback" not in result.stderr
    if value:  # empty in the environment is unset: one worker, which would serve
        env = {"SCOPEGATE_WORKERS": value}
        from_env = scopegate("serve", "--data-dir", str(tmp_path), env=env)
        assert from_env.returncode == 2 and "SCOPEGATE_WORKERS" in from_env.stderr


def test_migrations_are_checked_once_by_the_parent(tmp_path):
    """--no-migrate on an empty database: the parent refuses before any worker starts."""
    result = scopegate(
        "serve",
        "--workers",
        "2",
        "--no-migrate",
        "--data-dir",
        str(tmp_path),
        "--http-port",
        "0",
        "--grpc-port",
        "0",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not serving" in result.stderr
    assert "worker" not in result.stdout


def test_restart_back_off_grows_and_resets():
    delays = [supervision.restart_delay(failures) for failures in range(10)]
    assert delays[0] == 0  # a worker that ran a while comes back at once
    assert delays[1:4] == [1.0, 2.0, 4.0]
    assert delays[-1] == supervision.MAX_BACKOFF_SECONDS


def test_workers_stop_when_the_parent_is_killed_outright(tmp_path):
    process = ServerProcess(data_dir=tmp_path, database_url=None, extra_args=["--workers", "2"])
    process.start()
    pids = list(wait_for_workers(process, 2).values())
    process.process.kill()  # SIGKILL: no chance to stop them itself
    process.process.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a worker outlived its killed parent"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Not a zombie (a worker already gone but not yet reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_worker_that_cannot_start_for_its_configuration_stops_the_server(tmp_path):
    """A restart that meets a configuration error (exit 2: here a database migrated by a
    newer scopegate meanwhile) would fail forever: the parent stops, exit code 2."""
    from sqlalchemy import text

    from scopegate.store.database import open_engine, sqlite_url

    process = ServerProcess(data_dir=tmp_path, database_url=None, extra_args=["--workers", "2"])
    process.start()
    index, victim = sorted(wait_for_workers(process, 2).items())[0]
    engine = open_engine(sqlite_url(tmp_path))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9999_newer')"))
    engine.dispose()
    os.kill(victim, signal.SIGKILL)
    assert process.process.wait(60) == 2
    log = process.log()
    # It had served under 30 s: an early death, restarted after the first back-off step.
    assert f"worker {index} (pid {victim}) exited (signal SIGKILL); restarting it in 1s" in log
    assert "refused to start (exit 2); stopping" in log
    assert not children(process.process.pid)
