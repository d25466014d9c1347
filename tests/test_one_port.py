"""`scopegate serve --port`: gRPC, REST and the portal on one port, plaintext and TLS.

The official clients (gRPC channel, JSON channel, requests, curl, the Node.js client) use
one address. Each connection goes to gRPC or HTTP by its first bytes, or over TLS by ALPN;
a gRPC connection is piped to an internal loopback listener, and the audit log still
names the real client. Slow and idle connections on the one port, and a graceful stop,
are tested with the two-port suites (test_connection_limits.py, test_server_lifecycle.py),
which run against both modes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from scopegate.transports.grpc_pipe import PipedPeers, grpc_peer
from tests.support.api import me, ok, pat_reads_its_user
from tests.support.clients import TRANSPORTS, make_stub, new_id, trust_only
from tests.support.raw_grpc import RawGrpc
from tests.support.server_process import ServerProcess
from tests.support.servers import SERVER_ENV

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
PATIENCE = 30.0


def _start(tmp_path_factory, tls=None) -> ServerProcess:
    return ServerProcess(
        data_dir=tmp_path_factory.mktemp("scopegate-one-port"),
        database_url=None,
        extra_env=dict(SERVER_ENV),
        tls=tls,
        one_port=True,
    ).start()


@pytest.fixture(scope="module", params=["plaintext", "tls"])
def one_port(request, tmp_path_factory) -> Iterator[ServerProcess]:
    tls = request.getfixturevalue("tls_certificate") if request.param == "tls" else None
    server = _start(tmp_path_factory, tls)
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def plain_one_port(tmp_path_factory) -> Iterator[ServerProcess]:
    server = _start(tmp_path_factory)
    yield server
    assert server.stop() == 0, server.log()


def _session(server: ServerProcess) -> requests.Session:
    session = requests.Session()
    if server.tls:
        trust_only(session, server.tls.cert)
    return session


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_official_clients_on_one_address(one_port, transport):
    """The gRPC channel (insecure, or TLS trusting the certificate) and the JSON channel
    name the same host and port."""
    assert one_port.grpc_address.rpartition(":")[2] == one_port.http_url.rpartition(":")[2]
    pat_reads_its_user(one_port, transport)


def test_rest_portal_and_grpc_health_on_one_port(one_port):
    pat = one_port.create_user(new_id())
    session = _session(one_port)
    reply = session.get(
        f"{one_port.http_url}/v2/myscopes", headers={"authorization": f"Key {pat}"}, timeout=10
    )
    assert reply.status_code == 200 and reply.json()["scopes"] == ["All"]
    page = session.get(f"{one_port.http_url}/portal/login", timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    if one_port.tls:
        channel = grpc.secure_channel(
            one_port.grpc_address, grpc.ssl_channel_credentials(one_port.tls.cert.read_bytes())
        )
    else:
        channel = grpc.insecure_channel(one_port.grpc_address)
    with channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service="clarifai.api.V2"), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_curl_rest_and_what_http2_rest_clients_get(one_port):
    pat = one_port.create_user(new_id())
    trust = ["--cacert", str(one_port.tls.cert)] if one_port.tls else []
    url = f"{one_port.http_url}/v2/users/me"

    def curl(*options: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["curl", "-sS", "-m", "20", *trust, *options, "-H", f"authorization: Key {pat}", url],
            capture_output=True,
            text=True,
            timeout=60,
        )

    plain = curl("-w", "\n%{http_version} %{http_code}")
    body, _, status = plain.stdout.rpartition("\n")
    assert status == "1.1 200", plain
    assert json.loads(body)["status"]["code"] == codes.SUCCESS
    # curl over TLS offers h2 and http/1.1: the server's order picks http/1.1.
    assert curl("--http2", "-w", "\n%{http_version} %{http_code}").stdout.endswith("1.1 200")
    http2 = curl("--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}")
    if one_port.tls:  # over TLS curl still negotiates by ALPN: HTTP/1.1
        assert http2.stdout.endswith("1.1 200"), http2
    else:  # HTTP/2 with prior knowledge is taken for gRPC: no HTTP answer
        assert http2.returncode != 0 and not http2.stdout.strip("0 \n"), http2


@contextlib.contextmanager
def _tls_socket(server: ServerProcess, offered: list[str] | None = None) -> Iterator[ssl.SSLSocket]:
    context = server.tls.client_context()
    if offered:
        context.set_alpn_protocols(offered)
    raw = socket.create_connection(("127.0.0.1", server.http_port), timeout=PATIENCE)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        yield sock


def _alpn(server: ServerProcess, offered: list[str] | None) -> str | None:
    with _tls_socket(server, offered) as sock:
        return sock.selected_alpn_protocol()


def test_tls_alpn_prefers_http1_and_gives_h2_to_h2_only_clients(one_port):
    if not one_port.tls:
        pytest.skip("ALPN is a TLS matter")
    assert _alpn(one_port, ["h2", "http/1.1"]) == "http/1.1"
    assert _alpn(one_port, ["h2"]) == "h2"
    assert _alpn(one_port, None) is None


def test_tls_without_alpn_is_routed_by_its_first_bytes(one_port):
    """A TLS client that offers no ALPN: HTTP/1.1 works, and so does the HTTP/2 preface."""
    if not one_port.tls:
        pytest.skip("ALPN is a TLS matter")
    with _tls_socket(one_port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 200 ")
    with _tls_socket(one_port) as sock:
        sock.sendall(PREFACE + EMPTY_SETTINGS)
        assert sock.recv(9)[3] == 0x04  # the server's SETTINGS: gRPC answered


def _read_until_closed(sock) -> bytes:
    received = b""
    with contextlib.suppress(ConnectionResetError, ssl.SSLError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "first_bytes",
    [
        b"\x00\x01\x02garbage\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",  # the preface's start, then not
        b"\x16\x03\x01\x00\x05hello",  # a TLS record on the plaintext port
    ],
)
def test_garbage_first_bytes_are_answered_400_and_closed(plain_one_port, first_bytes):
    with socket.create_connection(("127.0.0.1", plain_one_port.http_port), PATIENCE) as sock:
        sock.settimeout(PATIENCE)
        sock.sendall(first_bytes)
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert requests.get(f"{plain_one_port.http_url}/healthz", timeout=10).status_code == 200


def test_garbage_after_the_preface_is_refused_by_grpc_and_closed(plain_one_port):
    with socket.create_connection(("127.0.0.1", plain_one_port.http_port), PATIENCE) as sock:
        sock.settimeout(PATIENCE)
        sock.sendall(PREFACE + b"\xff" * 64)
        answer = _read_until_closed(sock)
    assert b"HTTP/1.1" not in answer
    assert requests.get(f"{plain_one_port.http_url}/healthz", timeout=10).status_code == 200


class _FromAddress:
    """A TCP forwarder whose connections to the server come from `source` (another
    loopback address): what the server records must be that address, not 127.0.0.1."""

    def __init__(self, target: tuple[str, int], source: str) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target, self.source = target, source
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(
                    self.target, timeout=PATIENCE, source_address=(self.source, 0)
                )
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._copy, args=(a, b), daemon=True).start()

    @staticmethod
    def _copy(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


def test_audit_log_names_the_real_client_of_a_piped_grpc_call(plain_one_port):
    user_id = new_id()
    pat = plain_one_port.create_user(user_id)
    forwarder = _FromAddress(("127.0.0.1", plain_one_port.http_port), "127.0.0.7")
    try:
        channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=forwarder.port)
        stub = service_pb2_grpc.V2Stub(channel)
        ok(
            stub.PostKeys(
                service_pb2.PostKeysRequest(
                    user_app_id=me(),
                    keys=[
                        resources_pb2.Key(
                            description="over the one port",
                            scopes=["Apps_Get"],
                            type="personal_access_token",
                        )
                    ],
                ),
                metadata=(("authorization", f"Key {pat}"),),
            )
        )
        # The same call straight to the one port: a local client, as it is.
        local = make_stub(plain_one_port, "grpc")
        ok(
            local.PostKeys(
                service_pb2.PostKeysRequest(
                    user_app_id=me(),
                    keys=[resources_pb2.Key(scopes=["Apps_Get"], type="personal_access_token")],
                ),
                metadata=(("authorization", f"Key {pat}"),),
            )
        )
    finally:
        forwarder.close()
    result = plain_one_port.cli("audit", "--user", user_id, "--action", "key.create", "--json")
    events = json.loads(result.stdout)["events"]
    # (The user's own creation, in process, is recorded as "local".)
    addresses = sorted(e["client_address"] for e in events if e["client_address"] != "local")
    assert len(addresses) == 2, events
    assert addresses[0].startswith("ipv4:127.0.0.1:"), addresses
    assert addresses[1].startswith("ipv4:127.0.0.7:"), addresses


def _user_with_app(server: ServerProcess, app_id: str):
    """A new user with an app: (PAT, its metadata, a gRPC stub, the app's ids)."""
    pat = server.create_user(new_id())
    key = (("authorization", f"Key {pat}"),)
    stub = make_stub(server, "grpc")
    apps = [resources_pb2.App(id=app_id)]
    ok(stub.PostApps(service_pb2.PostAppsRequest(user_app_id=me(), apps=apps), metadata=key))
    return pat, key, stub, me(app_id=app_id)


def _post_concepts(stub, key, app, names: list[str]) -> None:
    """Concepts named `names` (ids from their first 5 characters), 128 per request."""
    for start in range(0, len(names), 128):
        concepts = [
            resources_pb2.Concept(id=name[:5].replace("-", "_"), name=name)
            for name in names[start : start + 128]
        ]
        request = service_pb2.PostConceptsRequest(user_app_id=app, concepts=concepts)
        ok(stub.PostConcepts(request, metadata=key))


def test_messages_larger_than_a_relay_read_cross_the_one_port_whole(plain_one_port):
    """Requests and answers several times the relay's 64 KiB read, four callers at once on
    one channel: every byte arrives, in order, both ways (a read the relay passes on in
    several writes)."""
    _, key, stub, app = _user_with_app(plain_one_port, "big")

    def names_of(batch: int) -> list[str]:
        return [f"{batch}-{n:03d}-" + "x" * 240 for n in range(192)]

    def post_and_list(batch: int) -> list[str]:
        noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
        png = io.BytesIO()
        noise.save(png, "PNG")  # noise does not compress: ~270 KB
        image = resources_pb2.Image(base64=png.getvalue())
        inputs = [resources_pb2.Input(id=f"i{batch}", data=resources_pb2.Data(image=image))]
        # A whole, valid PNG or the server refuses it: the ~270 KB crossed intact.
        ok(
            stub.PostInputs(
                service_pb2.PostInputsRequest(user_app_id=app, inputs=inputs), metadata=key
            )
        )
        _post_concepts(stub, key, app, names_of(batch))
        listed = stub.ListConcepts(
            service_pb2.ListConceptsRequest(user_app_id=app, per_page=1000), metadata=key
        )
        ok(listed)
        return [c.name for c in listed.concepts if c.name.startswith(f"{batch}-")]

    results: dict[int, list[str]] = {}
    threads = [
        threading.Thread(target=lambda b=b: results.update({b: post_and_list(b)})) for b in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)
    assert sorted(results) == [0, 1, 2, 3]
    for batch, names in results.items():
        assert sorted(names) == names_of(batch)


def test_a_client_that_stops_reading_gets_every_answer_once_it_reads_again(one_port):
    """120 answers of ~50 KB asked for at once by a client that then reads nothing for a
    while, through a small receive buffer and with every HTTP/2 window open: the relay
    (plaintext) or the pipe in the event loop (TLS) finds the client's socket full, holds
    what it read, and carries on when it drains."""
    pat, key, stub, app = _user_with_app(one_port, "wide")
    names = sorted(f"{n:03d}-" + "y" * 240 for n in range(192))
    _post_concepts(stub, key, app, names)
    tls = one_port.tls.client_context() if one_port.tls else None
    client = RawGrpc(("127.0.0.1", one_port.http_port), receive_buffer=4096, tls=tls)
    try:
        ask = service_pb2.ListConceptsRequest(user_app_id=app, per_page=1000)
        streams = {
            client.call(
                "/clarifai.api.V2/ListConcepts",
                ask.SerializeToString(),
                {"authorization": f"Key {pat}"},
            )
            for _ in range(120)
        }
        # Reading nothing: ~6 MB wait on the server's side, more than a socket's send
        # buffer grows to (4 MiB by default).
        time.sleep(2)
        answers = client.read_answers(streams, PATIENCE)
    finally:
        client.close()
    for raw in answers.values():
        answer = service_pb2.MultiConceptResponse.FromString(raw)
        ok(answer)
        assert sorted(c.name for c in answer.concepts) == names


def test_piped_peers_answer_only_the_connections_they_recorded():
    peers = PipedPeers()
    peers.add("ipv4:127.0.0.1:40000", "ipv4:203.0.113.9:5555")
    assert peers("ipv4:127.0.0.1:40000") == "ipv4:203.0.113.9:5555"
    assert peers("ipv4:127.0.0.1:40001") == "ipv4:127.0.0.1:40001"  # dialled the listener itself
    assert peers("ipv4:127.0.0.2:40000") == "ipv4:127.0.0.2:40000"  # same port, other address
    peers.discard("ipv4:127.0.0.1:40000")
    assert peers("ipv4:127.0.0.1:40000") == "ipv4:127.0.0.1:40000"
    assert grpc_peer(("::ffff:198.51.100.4", 7)) == "ipv4:198.51.100.4:7"
    assert grpc_peer(("2001:db8::1", 443, 0, 0)) == "ipv6:[2001:db8::1]:443"


NODE_DIR = Path(__file__).resolve().parent / "node"


def test_node_client_predicts_through_the_one_tls_port(one_port, tmp_path):
    """The seeds' Node.js snippet (`ClarifaiStub.grpc()`, grpc-js: TLS offering only h2)
    with CLARIFAI_GRPC_BASE=host:PORT, the port REST is served on too."""
    node = shutil.which("node")
    if not one_port.tls or not node or not (NODE_DIR / "node_modules").exists():
        pytest.skip("ClarifaiStub.grpc() speaks TLS; needs node and tests/node/node_modules")

    image = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(image, format="PNG")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CLARIFAI", "GRPC"))}
    result = subprocess.run(
        [node, "pat_predict.js"],
        cwd=NODE_DIR,
        env={
            **inherited,
            "CLARIFAI_GRPC_BASE": one_port.grpc_address,
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(one_port.tls.cert),
            "CLARIFAI_PAT": one_port.create_user(new_id()),
            "IMAGE_FILE_LOCATION": str(image),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"]["code"] == codes.SUCCESS, answer
    assert answer["outputs"][0]["data"]["colors"][0]["raw_hex"] == "#c81e1e"


def _relay_processes(server: ServerProcess) -> list[int]:
    """The server's relay processes (its children running scopegate.transports.grpc_relay)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == server.process.pid and b"scopegate.transports.grpc_relay" in command:
            found.append(int(entry))
    return found


@pytest.mark.skipif(not hasattr(os, "splice"), reason="the relay process needs os.splice")
def test_a_dead_relay_process_is_replaced_by_the_next_connection(plain_one_port):
    pat = plain_one_port.create_user(new_id())
    first = make_stub(plain_one_port, "grpc")
    assert (
        first.MyScopes(
            service_pb2.MyScopesRequest(), metadata=(("authorization", f"Key {pat}"),)
        ).status.code
        == codes.SUCCESS
    )
    (relay,) = _relay_processes(plain_one_port)  # one, started by the first connection
    os.kill(relay, 9)
    deadline = time.monotonic() + PATIENCE
    while "relay process ended" not in plain_one_port.log():
        assert time.monotonic() < deadline, "the server did not notice its relay's end"
        time.sleep(0.05)
    # A new connection starts a new relay and is served; nothing else was disturbed.
    channel = grpc.insecure_channel(
        f"127.0.0.1:{plain_one_port.http_port}", options=[("grpc.use_local_subchannel_pool", 1)]
    )
    try:
        reply = service_pb2_grpc.V2Stub(channel).MyScopes(
            service_pb2.MyScopesRequest(), metadata=(("authorization", f"Key {pat}"),), timeout=10
        )
    finally:
        channel.close()
    assert reply.status.code == codes.SUCCESS
    (replacement,) = _relay_processes(plain_one_port)
    assert replacement != relay
