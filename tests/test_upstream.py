"""Forwarding upstream (`scopegate serve --upstream`), against a real test upstream
(tests/support/upstream.py) that records every call it receives.

Expectations from the README's "Gateway" section: an allowed call arrives authorized as
usual, with the identity metadata and resolved ids and without the client's secrets or
x-scopegate-* headers; a refused call never arrives; answers pass through unchanged; a
down or slow upstream answers 40031/503 or 40032/504 without naming its address.
"""

from __future__ import annotations

import socket
import time
import uuid

import grpc
import jwt
import pytest
import requests
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.contract.catalog import load_catalog
from tests.support.api import PASSWORD, login, ok
from tests.support.apps import new_app
from tests.support.clients import TRANSPORTS, Client, make_stub, new_id
from tests.support.server_process import ServerProcess, free_port, scopegate
from tests.support.servers import BACKENDS, SERVER_ENV
from tests.support.upstream import TestUpstream, list_workflows

# The shared gates' bound: far past any wait of these tests, so a cancellation they see is
# the client's, never the deadline's. `slow_gate` has a short one.
UPSTREAM_TIMEOUT = 30.0
SHORT_TIMEOUT = 2.0
SECRET_HEADERS = ("authorization", "x-clarifai-session-token")


def _on_the_wire(seconds: float) -> float:
    """A deadline of `seconds` as a server may read it: gRPC's timeout header rounds it up
    a little (to its units), never by a second."""
    return seconds * 1.01 + 0.05


@pytest.fixture(scope="module")
def upstream():
    server = TestUpstream().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream(upstream):
    upstream.reset()


def _gate(request, tmp_path_factory, backend: str, *args: str) -> ServerProcess:
    url = None
    if backend == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"sg_{uuid.uuid4().hex[:12]}")
    return ServerProcess(
        data_dir=tmp_path_factory.mktemp(f"gate-{backend}"),
        database_url=url,
        extra_env=dict(SERVER_ENV),
        extra_args=list(args),
    ).start()


@pytest.fixture(scope="module", params=BACKENDS)
def gate(request, tmp_path_factory, upstream):
    process = _gate(
        request,
        tmp_path_factory,
        request.param,
        "--upstream",
        upstream.address,
        "--upstream-timeout",
        str(UPSTREAM_TIMEOUT),
        "--upstream-assertion",
        "--upstream-method",
        "PostModel*Outputs",
    )
    yield process
    assert process.stop() == 0, process.log()


class World:
    """alice owns apps `main` and `other`; carol holds All on `other` only; dave holds a
    few read scopes on `main`; mallory is a stranger. Keys: each app's default API key."""

    def __init__(self, gate: ServerProcess) -> None:
        client = Client("grpc", make_stub(gate, "grpc"))
        self.alice = new_id("alice")
        self.alice_pat = gate.create_user(self.alice)
        self.main, self.main_key = new_app(client, self.alice_pat)
        self.other, self.other_key = new_app(client, self.alice_pat)
        self.carol, self.carol_pat = self._collaborator(gate, client, self.other, ["All"])
        self.dave, self.dave_pat = self._collaborator(
            gate, client, self.main, ["Apps_Get", "Models_Get", "Workflows_Get"]
        )
        self.mallory = new_id("mallory")
        self.mallory_pat = gate.create_user(self.mallory)

    def _collaborator(self, gate, client, app_id, scopes):
        user_id = new_id()
        pat = gate.create_user(user_id)
        ok(
            client.stub.PostCollaborators(
                service_pb2.PostCollaboratorsRequest(
                    user_app_id=resources_pb2.UserAppIDSet(user_id=self.alice, app_id=app_id),
                    collaborators=[
                        resources_pb2.Collaborator(
                            user=resources_pb2.User(id=user_id), scopes=scopes
                        )
                    ],
                ),
                metadata=client.auth(self.alice_pat),
            )
        )
        return user_id, pat


@pytest.fixture(scope="module")
def world(gate) -> World:
    return World(gate)


def _stub(gate, transport):
    return make_stub(gate, transport)


def _auth(secret: str, *more) -> tuple:
    return (("authorization", f"Key {secret}"), *more)


# ------------------------------------------------------------------ allowed calls arrive


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_allowed_call_arrives_with_the_identity_and_without_secrets(
    gate, world, upstream, transport
):
    stub = _stub(gate, transport)
    reply = ok(
        stub.ListWorkflows(
            list_workflows(user_id="me", app_id=world.main), metadata=_auth(world.alice_pat)
        )
    )
    assert [w.id for w in reply.workflows] == [f"wf-{world.main}"]
    (received,) = upstream.received("ListWorkflows")
    assert received.header("x-scopegate-caller") == world.alice
    assert received.header("x-scopegate-credential-type") == "personal_access_token"
    assert received.header("x-scopegate-relation") == "owner"
    assert received.header("x-scopegate-scopes") == "All"
    assert received.header("x-scopegate-credential")  # the public id, never the secret
    assert world.alice_pat not in str(received.metadata)
    assert received.header("x-request-id") == reply.status.req_id
    assert all(received.header(name) is None for name in SECRET_HEADERS)
    ids = received.requests[0].user_app_id
    assert (ids.user_id, ids.app_id) == (world.alice, world.main)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_collaborator_arrives_as_one_with_the_grants_scopes(gate, world, upstream, transport):
    stub = _stub(gate, transport)
    ok(
        stub.ListWorkflows(
            list_workflows(user_id=world.alice, app_id=world.main), metadata=_auth(world.dave_pat)
        )
    )
    (received,) = upstream.received("ListWorkflows")
    assert received.header("x-scopegate-caller") == world.dave
    assert received.header("x-scopegate-relation") == "collaborator"
    scopes = received.header("x-scopegate-scopes").split(",")
    # The grant's scopes, not the PAT's All; sorted, as the README says.
    assert {"Apps_Get", "Models_Get", "Workflows_Get"} <= set(scopes)
    assert "All" not in scopes and not any(s.endswith("_Add") for s in scopes)
    assert scopes == sorted(scopes)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_me_and_empty_ids_arrive_resolved(gate, world, upstream, transport):
    stub = _stub(gate, transport)
    ok(stub.ListWorkflows(list_workflows(app_id=world.main), metadata=_auth(world.alice_pat)))
    # An API key names nothing: its app is filled in.
    ok(stub.ListWorkflows(list_workflows(), metadata=_auth(world.main_key)))
    first, second = upstream.received("ListWorkflows")
    assert (first.requests[0].user_app_id.user_id, first.requests[0].user_app_id.app_id) == (
        world.alice,
        world.main,
    )
    ids = second.requests[0].user_app_id
    assert (ids.user_id, ids.app_id) == (world.alice, world.main)
    assert second.header("x-scopegate-credential-type") == "app_specific_key"
    assert second.header("x-scopegate-relation") == "owner"


def test_a_session_arrives_as_one_and_its_token_never_does(gate, world, upstream):
    user_id = new_id()
    gate.create_user(user_id, password=PASSWORD)
    status, body = login(gate, f"{user_id}@example.com")
    assert status == 200, body
    token = body["session_token"]
    stub = _stub(gate, "grpc")
    ok(
        stub.ListWorkflows(
            list_workflows(app_id="mine"), metadata=(("x-clarifai-session-token", token),)
        )
    )
    reply = requests.get(
        f"{gate.http_url}/v2/users/me/apps/mine/workflows",
        headers={"x-clarifai-session-token": token},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    calls = upstream.received("ListWorkflows")
    assert len(calls) == 2
    for received in calls:
        assert received.header("x-scopegate-credential-type") == "session"
        assert received.header("x-scopegate-caller") == user_id
        assert token not in str(received.metadata)
        assert all(received.header(name) is None for name in SECRET_HEADERS)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_noauth_call_arrives_with_its_request_id_only(gate, world, upstream, transport):
    """ListOpenSourceLicenses needs no credential: none is named, whatever the client sent."""
    reply = ok(
        _stub(gate, transport).ListOpenSourceLicenses(
            service_pb2.ListOpenSourceLicensesRequest(),
            metadata=_auth(world.alice_pat, ("x-scopegate-caller", "root")),
        )
    )
    (received,) = upstream.received("ListOpenSourceLicenses")
    sent = {name for name, _ in received.metadata if name != "user-agent"}
    assert sent == {"x-request-id", "x-scopegate-assertion"}
    assert received.header("x-request-id") == reply.status.req_id


def test_a_method_served_here_goes_upstream_when_named(gate, world, upstream):
    """--upstream-method PostModel*Outputs: PostModelOutputs has a local handler."""
    stub = _stub(gate, "grpc")
    reply = ok(
        stub.PostModelOutputs(
            service_pb2.PostModelOutputsRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="me", app_id=world.main),
                model_id="anything",
            ),
            metadata=_auth(world.alice_pat),
        )
    )
    assert [o.id for o in reply.outputs] == ["from-upstream"]
    assert len(upstream.received("PostModelOutputs")) == 1
    log = gate.log()
    assert "scopegate: forwarding" in log and "and PostModelOutputs" in log
    assert "served here" in log and "ListApps" in log.split("served here")[1]


# ------------------------------------------------------------------ refused calls never do


def _refusals(world):
    """(who, secret, ids named, the code the README's rules give)."""
    return [
        ("a stranger", world.mallory_pat, (world.alice, world.main), codes.CONN_DOES_NOT_EXIST),
        (
            "a collaborator granted All on another app",
            world.carol_pat,
            (world.alice, world.main),
            codes.CONN_DOES_NOT_EXIST,
        ),
        (
            "another app's API key",
            world.other_key,
            (world.alice, world.main),
            codes.CONN_KEY_INVALID,
        ),
        (
            "another app's API key naming me",
            world.other_key,
            ("me", world.main),
            codes.CONN_KEY_INVALID,
        ),
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refused_calls_never_arrive(gate, world, upstream, transport):
    stub = _stub(gate, transport)
    for who, secret, (user_id, app_id), code in _refusals(world):
        reply = stub.ListWorkflows(
            list_workflows(user_id=user_id, app_id=app_id), metadata=_auth(secret)
        )
        assert reply.status.code == code, who
    unknown = stub.ListWorkflows(list_workflows(), metadata=_auth("sgp_" + "0" * 40))
    assert unknown.status.code != codes.SUCCESS
    assert upstream.received() == []


def test_a_rest_body_naming_another_app_never_arrives(gate, world, upstream):
    """POST /v2/workflows carries its ids in the JSON body only."""
    body = {
        "user_app_id": {"user_id": world.alice, "app_id": world.main},
        "workflows": [{"id": "w"}],
    }
    for who, secret, _ids, _code in _refusals(world)[:3]:
        reply = requests.post(
            f"{gate.http_url}/v2/workflows",
            json=body,
            headers={"authorization": f"Key {secret}"},
            timeout=10,
        )
        assert reply.status_code in (401, 404), (who, reply.text)
    allowed = requests.post(
        f"{gate.http_url}/v2/workflows",
        json=body,
        headers={"authorization": f"Key {world.main_key}"},
        timeout=10,
    )
    assert allowed.status_code == 200, allowed.text
    (received,) = upstream.received()  # the allowed one only
    assert received.method == "PostWorkflows"
    assert received.header("x-scopegate-credential-type") == "app_specific_key"


def test_an_upload_config_naming_another_app_never_arrives(gate, world, upstream):
    """The upload streams name their app inside the first message's upload_config."""
    stub = _stub(gate, "grpc")

    def upload(user_id, app_id):
        config = service_pb2.PostModelVersionsUploadConfig(
            user_app_id=resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id),
            model_id="m",
            total_size=3,
        )
        yield service_pb2.PostModelVersionsUploadRequest(upload_config=config)
        yield service_pb2.PostModelVersionsUploadRequest(
            content_part=resources_pb2.UploadContentPart(data=b"abc", part_number=1)
        )

    for secret in (world.mallory_pat, world.carol_pat, world.other_key):
        answers = list(
            stub.PostModelVersionsUpload(upload(world.alice, world.main), metadata=_auth(secret))
        )
        assert [a.status.code for a in answers] in (
            [codes.CONN_DOES_NOT_EXIST],
            [codes.CONN_KEY_INVALID],
            [codes.CONN_INSUFFICIENT_SCOPES],
        )
    assert upstream.received() == []
    answers = list(
        stub.PostModelVersionsUpload(upload("me", world.main), metadata=_auth(world.alice_pat))
    )
    assert [a.status.code for a in answers] == [codes.SUCCESS, codes.SUCCESS]
    (received,) = upstream.received()
    config = received.requests[0].upload_config.user_app_id
    assert (config.user_id, config.app_id) == (world.alice, world.main)
    assert received.requests[1].content_part.data == b"abc"


def test_spoofed_identity_headers_never_arrive(gate, world, upstream):
    spoofs = (
        ("x-scopegate-caller", "root"),
        ("x-scopegate-scopes", "All"),
        ("x-scopegate-relation", "owner"),
        ("x-scopegate-credential-type", "session"),
        ("x-scopegate-assertion", "forged"),
        ("x-scopegate-anything", "x"),
    )
    stub = _stub(gate, "grpc")
    ok(
        stub.ListWorkflows(
            list_workflows(user_id=world.alice, app_id=world.main),
            metadata=_auth(world.dave_pat, *spoofs),
        )
    )
    reply = requests.get(
        f"{gate.http_url}/v2/users/{world.alice}/apps/{world.main}/workflows",
        headers={"authorization": f"Key {world.dave_pat}", **dict(spoofs)},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    for received in upstream.received("ListWorkflows"):
        assert received.header("x-scopegate-caller") == world.dave
        assert received.header("x-scopegate-relation") == "collaborator"
        assert received.header("x-scopegate-credential-type") == "personal_access_token"
        assert received.header("x-scopegate-anything") is None
        assert received.header("x-scopegate-assertion") != "forged"
    assert len(upstream.received("ListWorkflows")) == 2


# ------------------------------------------------------------------ answers pass through


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_upstreams_in_band_status_passes_through(gate, world, upstream, transport):
    stub = _stub(gate, transport)
    request = list_workflows(user_id="me", app_id=world.main)
    request.per_page = 13
    reply = stub.ListWorkflows(request, metadata=_auth(world.alice_pat))
    assert (reply.status.code, reply.status.description, reply.status.details) == (
        codes.WORKFLOW_INVALID_REQUEST,
        "Upstream refused",
        "per_page 13 is unlucky",
    )
    assert reply.status.req_id == "upstream-req"
    raw = requests.get(
        f"{gate.http_url}/v2/users/me/apps/{world.main}/workflows?per_page=13",
        headers={"authorization": f"Key {world.alice_pat}"},
        timeout=10,
    )
    assert raw.status_code == 400 and raw.json()["status"]["code"] == codes.WORKFLOW_INVALID_REQUEST


# ------------------------------------------------------------------ streams


def test_streams_are_forwarded_both_ways(gate, world, upstream):
    stub = _stub(gate, "grpc")
    ids = resources_pb2.UserAppIDSet(user_id="me", app_id=world.main)
    answers = list(
        stub.GenerateModelOutputs(
            service_pb2.PostModelOutputsRequest(user_app_id=ids, model_id="m"),
            metadata=_auth(world.alice_pat),
        )
    )
    assert [a.status.description for a in answers] == [
        f"upstream GenerateModelOutputs {n}" for n in range(3)
    ]

    def requests_():
        for n in range(4):
            yield service_pb2.PostModelOutputsRequest(user_app_id=ids, model_id="m" * (n + 1))

    answers = list(stub.StreamModelOutputs(requests_(), metadata=_auth(world.alice_pat)))
    sent = [
        service_pb2.PostModelOutputsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=world.alice, app_id=world.main),
            model_id="m" * (n + 1),
        ).ByteSize()
        for n in range(4)
    ]
    assert [a.status.details for a in answers] == [str(size) for size in sent]
    (bidi,) = upstream.received("StreamModelOutputs")
    assert [r.user_app_id.user_id for r in bidi.requests] == [world.alice] * 4  # me resolved
    assert bidi.header("x-scopegate-caller") == world.alice
    assert all(bidi.header(name) is None for name in SECRET_HEADERS)


def test_a_stream_message_naming_another_app_ends_it(gate, world, upstream):
    stub = _stub(gate, "grpc")

    def requests_():
        yield service_pb2.PostModelOutputsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=world.alice, app_id=world.main)
        )
        time.sleep(0.3)  # answered before the next one goes
        yield service_pb2.PostModelOutputsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=world.alice, app_id=world.other)
        )

    # Even the owner's stream acts on the one app its first message names.
    answers = list(stub.StreamModelOutputs(requests_(), metadata=_auth(world.alice_pat)))
    assert [a.status.code for a in answers] == [codes.SUCCESS, codes.CONN_INVALID_REQUEST]
    (received,) = upstream.received("StreamModelOutputs")
    assert [r.user_app_id.app_id for r in received.requests] == [world.main]


def test_a_refused_stream_never_arrives(gate, world, upstream):
    stub = _stub(gate, "grpc")
    ids = resources_pb2.UserAppIDSet(user_id=world.alice, app_id=world.main)
    answers = list(
        stub.GenerateModelOutputs(
            service_pb2.PostModelOutputsRequest(user_app_id=ids, model_id="m"),
            metadata=_auth(world.carol_pat),
        )
    )
    assert [a.status.code for a in answers] == [codes.CONN_DOES_NOT_EXIST]
    answers = list(
        stub.StreamModelOutputs(
            iter([service_pb2.PostModelOutputsRequest(user_app_id=ids)]),
            metadata=_auth(world.other_key),
        )
    )
    assert [a.status.code for a in answers] == [codes.CONN_KEY_INVALID]
    assert upstream.received() == []


STREAMING = [name for name, spec in load_catalog().methods.items() if spec.server_streaming]


def _rest_path(template: str, alice: str, app: str) -> str:
    path = template.replace("{user_app_id.user_id}", alice).replace("{user_app_id.app_id}", app)
    while "{" in path:
        start = path.index("{")
        path = path[:start] + "x" + path[path.index("}") + 1 :]
    return path


@pytest.mark.parametrize("method", STREAMING)
def test_over_rest_a_streaming_method_answers_its_first_message(gate, world, upstream, method):
    """REST: one request (a stream of one message), the stream's first answer."""
    assert len(STREAMING) == 9
    catalog = load_catalog()
    spec = catalog.methods[method]
    # A path of its own: StreamLogEntries shares its first two with ListLogEntries, which
    # the router answers there (README).
    taken = {
        (b.verb, b.template)
        for other in catalog.methods.values()
        if other is not spec
        for b in other.bindings
    }
    binding = next(b for b in spec.bindings if (b.verb, b.template) not in taken)
    path = _rest_path(binding.template, world.alice, world.main)
    if spec.auth_type.name == "PAT_AUTH" or not spec.has_user_app_id:
        secret = world.alice_pat
    else:
        secret = world.main_key
    headers = {"authorization": f"Key {secret}"}
    if binding.verb == "GET":
        reply = requests.get(gate.http_url + path, headers=headers, timeout=10)
    else:
        reply = requests.post(gate.http_url + path, json={}, headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"]["description"] == f"upstream {method} 0"
    (received,) = upstream.received(method)
    assert len(received.requests) == 1
    assert received.header("x-scopegate-caller") == world.alice


# ------------------------------------------------------------------ failures, deadlines


@pytest.fixture(scope="module")
def slow_gate(request, tmp_path_factory, upstream):
    """A gate with a short --upstream-timeout (database: irrelevant here, SQLite)."""
    process = _gate(
        request,
        tmp_path_factory,
        "sqlite",
        "--upstream",
        upstream.address,
        "--upstream-timeout",
        str(SHORT_TIMEOUT),
    )
    process.pat = process.create_user(new_id())
    yield process
    assert process.stop() == 0, process.log()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_slow_upstream_times_out(slow_gate, upstream, transport):
    upstream.delay = SHORT_TIMEOUT + 2
    stub = _stub(slow_gate, transport)
    reply = stub.ListWorkflows(list_workflows(app_id="a"), metadata=_auth(slow_gate.pat))
    assert reply.status.code == codes.RPC_REQUEST_TIMEOUT
    assert "127.0.0.1" not in str(reply.status)
    upstream.reset()
    upstream.delay = SHORT_TIMEOUT + 2
    raw = requests.get(
        f"{slow_gate.http_url}/v2/users/me/apps/a/workflows",
        headers={"authorization": f"Key {slow_gate.pat}"},
        timeout=10,
    )
    assert raw.status_code == 504 and raw.json()["status"]["code"] == codes.RPC_REQUEST_TIMEOUT


def test_the_clients_deadline_is_propagated(slow_gate, upstream):
    stub = _stub(slow_gate, "grpc")
    ok(stub.ListWorkflows(list_workflows(app_id="a"), metadata=_auth(slow_gate.pat), timeout=1.0))
    ok(stub.ListWorkflows(list_workflows(app_id="a"), metadata=_auth(slow_gate.pat)))
    short, bounded = upstream.received("ListWorkflows")
    assert 0 < short.time_remaining <= _on_the_wire(1.0)
    # --upstream-timeout bounds it (gRPC rounds a deadline up a little on the wire).
    assert 1.0 < bounded.time_remaining <= _on_the_wire(SHORT_TIMEOUT)


def test_a_streams_deadline_is_propagated_both_ways(gate, world, upstream):
    stub = _stub(gate, "grpc")
    ids = resources_pb2.UserAppIDSet(app_id=world.main)
    request = service_pb2.PostModelOutputsRequest(user_app_id=ids)
    list(stub.GenerateModelOutputs(request, metadata=_auth(world.alice_pat), timeout=5.0))
    list(stub.StreamModelOutputs(iter([request]), metadata=_auth(world.alice_pat), timeout=5.0))
    list(stub.StreamModelOutputs(iter([request]), metadata=_auth(world.alice_pat)))
    (server_stream,) = upstream.received("GenerateModelOutputs")
    bidi, unbounded = upstream.received("StreamModelOutputs")
    assert 0 < server_stream.time_remaining <= _on_the_wire(5.0)
    assert 0 < bidi.time_remaining <= _on_the_wire(5.0)
    assert _on_the_wire(5.0) < unbounded.time_remaining <= _on_the_wire(UPSTREAM_TIMEOUT)


def test_cancellation_by_the_client_cancels_the_upstream_call(gate, world, upstream):
    upstream.delay = 30
    stub = _stub(gate, "grpc")
    future = stub.ListWorkflows.future(
        list_workflows(app_id=world.main), metadata=_auth(world.alice_pat)
    )
    upstream.wait_for(lambda: upstream.received("ListWorkflows"))
    future.cancel()
    upstream.wait_for(lambda: upstream.received("ListWorkflows")[0].cancelled)

    stream = stub.GenerateModelOutputs(
        service_pb2.PostModelOutputsRequest(
            user_app_id=resources_pb2.UserAppIDSet(app_id=world.main)
        ),
        metadata=_auth(world.alice_pat),
    )
    upstream.wait_for(lambda: upstream.received("GenerateModelOutputs"))
    stream.cancel()
    upstream.wait_for(lambda: upstream.received("GenerateModelOutputs")[0].cancelled)
    with pytest.raises(grpc.RpcError):
        next(stream)


def test_a_rest_client_closing_its_connection_cancels_the_upstream_call(gate, world, upstream):
    upstream.delay = 30
    host, port = gate.http_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"GET /v2/users/me/apps/{world.main}/workflows HTTP/1.1\r\nhost: {host}\r\n"
            f"authorization: Key {world.alice_pat}\r\n\r\n".encode()
        )
        upstream.wait_for(lambda: upstream.received("ListWorkflows"))
    upstream.wait_for(lambda: upstream.received("ListWorkflows")[0].cancelled)


def test_a_slow_reader_holds_the_upstream_back(gate, world, upstream):
    """Flow control: 2,000 answers of 64 KiB (125 MiB) offered, a client that reads one and
    waits: the upstream is held back by the windows between, not drained into memory."""
    upstream.stream_answers, upstream.payload_bytes = 2000, 64 * 1024
    stub = _stub(gate, "grpc")
    stream = stub.GenerateModelOutputs(
        service_pb2.PostModelOutputsRequest(
            user_app_id=resources_pb2.UserAppIDSet(app_id=world.main)
        ),
        metadata=_auth(world.alice_pat),
    )
    assert next(stream).status.code == codes.SUCCESS
    time.sleep(2.0)
    (received,) = upstream.received("GenerateModelOutputs")
    held_at = received.sent
    time.sleep(0.5)
    assert received.sent == held_at  # no longer moving: held back
    assert held_at < 600, held_at  # at most the windows' worth (~37 MiB), not 125 MiB
    stream.cancel()
    upstream.wait_for(lambda: received.cancelled)


@pytest.fixture(scope="module")
def gate_to_nowhere(request, tmp_path_factory):
    """A gate whose upstream does not listen (database: irrelevant here, SQLite)."""
    process = _gate(request, tmp_path_factory, "sqlite", "--upstream", f"127.0.0.1:{free_port()}")
    yield process
    assert process.stop() == 0, process.log()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_unreachable_upstream_answers_unavailable_without_its_address(
    gate_to_nowhere, transport
):
    user = new_id()
    pat = gate_to_nowhere.create_user(user)
    stub = _stub(gate_to_nowhere, transport)
    reply = stub.ListWorkflows(list_workflows(app_id="a"), metadata=_auth(pat))
    assert reply.status.code == codes.RPC_SERVER_UNAVAILABLE
    assert "127.0.0.1" not in str(reply.status) and "ipv4" not in str(reply.status)
    raw = requests.get(
        f"{gate_to_nowhere.http_url}/v2/users/me/apps/a/workflows",
        headers={"authorization": f"Key {pat}"},
        timeout=10,
    )
    assert raw.status_code == 503
    assert raw.json()["status"]["code"] == codes.RPC_SERVER_UNAVAILABLE
    assert "127.0.0.1" not in raw.text
    answers = (
        list(
            stub.GenerateModelOutputs(
                service_pb2.PostModelOutputsRequest(
                    user_app_id=resources_pb2.UserAppIDSet(app_id="a")
                ),
                metadata=_auth(pat),
            )
        )
        if transport == "grpc"
        else []
    )
    assert [a.status.code for a in answers] in ([], [codes.RPC_SERVER_UNAVAILABLE])
    # No signed assertions configured: no key set either.
    assert (
        requests.get(f"{gate_to_nowhere.http_url}/.well-known/jwks.json", timeout=10).status_code
        == 404
    )


def test_a_tls_upstream_is_reached_with_its_roots_only(request, tmp_path_factory, tls_certificate):
    upstream = TestUpstream(tls=tls_certificate).start()
    gates = []
    try:
        args = ("--upstream", upstream.address)
        trusting = _gate(
            request, tmp_path_factory, "sqlite", *args, "--upstream-ca", str(tls_certificate.cert)
        )
        gates.append(trusting)
        # The system's roots do not hold a self-signed certificate; plaintext is no TLS.
        system_roots = _gate(request, tmp_path_factory, "sqlite", *args, "--upstream-tls")
        gates.append(system_roots)
        plaintext = _gate(request, tmp_path_factory, "sqlite", *args)
        gates.append(plaintext)
        for gate, code in (
            (trusting, codes.SUCCESS),
            (system_roots, codes.RPC_SERVER_UNAVAILABLE),
            (plaintext, codes.RPC_SERVER_UNAVAILABLE),
        ):
            pat = gate.create_user(new_id())
            reply = _stub(gate, "grpc").ListWorkflows(
                list_workflows(app_id="a"), metadata=_auth(pat)
            )
            assert reply.status.code == code, gate.extra_args
        assert len(upstream.received("ListWorkflows")) == 1
        assert "(TLS)" in trusting.log()
    finally:
        for gate in gates:
            gate.stop()
        upstream.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "nowhere"], "--upstream must be HOST:PORT"),
        (["--upstream", "127.0.0.1:1", "--upstream-method", "NoSuchMethod*"], "names no V2 method"),
        (["--upstream-method", "ListWorkflows"], "need --upstream"),
        (["--upstream", "127.0.0.1:1", "--upstream-timeout", "0"], "must be positive"),
        (
            ["--upstream", "127.0.0.1:1", "--upstream-ca", "/nonexistent/ca.pem"],
            "cannot read --upstream-ca",
        ),
    ],
)
def test_upstream_options_are_checked_at_start(tmp_path, args, message):
    result = scopegate(
        "serve", "--data-dir", str(tmp_path), "--http-port", "0", "--grpc-port", "0", *args
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


# ------------------------------------------------------------------ the signed assertion


def test_the_assertion_verifies_against_the_served_key_set(gate, world, upstream):
    stub = _stub(gate, "grpc")
    reply = ok(
        stub.ListWorkflows(
            list_workflows(user_id=world.alice, app_id=world.main),
            metadata=_auth(world.dave_pat),
        )
    )
    (received,) = upstream.received("ListWorkflows")
    token = received.header("x-scopegate-assertion")
    keys = requests.get(f"{gate.http_url}/.well-known/jwks.json", timeout=10)
    assert keys.status_code == 200
    key_set = jwt.PyJWKSet.from_dict(keys.json())
    kid = jwt.get_unverified_header(token)["kid"]
    (key,) = [k for k in key_set.keys if k.key_id == kid]
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], options={"require": ["exp", "iat"]})
    assert claims["sub"] == world.dave
    assert claims["relation"] == "collaborator"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["jti"] == reply.status.req_id == received.header("x-request-id")
    assert claims["method"] == "/clarifai.api.V2/ListWorkflows"
    assert claims["user_app_id"] == {"user_id": world.alice, "app_id": world.main}
    assert claims["scopes"] == received.header("x-scopegate-scopes").split(",")
    # Signed by this key and no other: a changed claim does not verify.
    header, payload, signature = token.split(".")
    forged = ".".join(
        [header, payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1], signature]
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key.key, algorithms=["EdDSA"])


# ------------------------------------------------------------------ without --upstream


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_without_an_upstream_nothing_is_forwarded(server, transport):
    user = new_id()
    pat = server.create_user(user)
    stub = make_stub(server, transport)
    reply = stub.ListWorkflows(list_workflows(app_id="a"), metadata=_auth(pat))
    assert reply.status.code == codes.NOT_IMPLEMENTED


def test_a_bad_assertion_key_stops_the_start_with_one_line(tmp_path):
    key = tmp_path / "not-a-key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    result = scopegate(
        "serve",
        "--data-dir",
        str(tmp_path),
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--upstream",
        "127.0.0.1:1",
        "--upstream-assertion",
        env={"SCOPEGATE_UPSTREAM_ASSERTION_KEY": str(key)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot sign assertions with" in result.stderr
    assert "Traceback" not in result.stderr
