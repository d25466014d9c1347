"""Limits on what one request may carry, and what a request answers when the database is
held by another writer: against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf.json_format import MessageToDict

from scopegate.request_limits import MAX_ITEMS, MAX_NESTED_ITEMS, too_many_items
from tests.support.clients import Client, make_stub, new_id
from tests.support.server_process import ServerProcess

C = status_code_pb2
ME = resources_pb2.UserAppIDSet(user_id="me")


def keys_request(count: int, description: str = "k") -> service_pb2.PostKeysRequest:
    keys = [resources_pb2.Key(description=description, scopes=["All"]) for _ in range(count)]
    return service_pb2.PostKeysRequest(user_app_id=ME, keys=keys)


def key_count(stub, auth) -> int:
    found = stub.ListKeys(service_pb2.ListKeysRequest(user_app_id=ME, per_page=1000), metadata=auth)
    assert found.status.code == C.SUCCESS, found.status
    return len(found.keys)


def rest(server: ServerProcess, pat: str, method: str, path: str, message=None):
    body = MessageToDict(message, preserving_proto_field_name=True) if message else None
    reply = requests.request(
        method,
        f"{server.http_url}{path}",
        json=body,
        headers={"authorization": f"Key {pat}"},
        timeout=60,
    )
    return reply.status_code, reply.json()


def test_lists_over_the_cap_are_refused_naming_field_and_cap(server):
    pat = server.create_user(new_id())
    auth = Client.auth(pat)
    stub = make_stub(server, "grpc")
    before = key_count(stub, auth)

    over = stub.PostKeys(keys_request(MAX_ITEMS + 1), metadata=auth)
    assert over.status.code == C.CONN_INVALID_REQUEST, over.status
    assert "'keys'" in over.status.details and str(MAX_ITEMS) in over.status.details
    assert key_count(stub, auth) == before  # nothing written

    status, body = rest(server, pat, "POST", "/v2/users/me/keys", keys_request(MAX_ITEMS + 1))
    assert status == 400 and body["status"]["code"] == C.CONN_INVALID_REQUEST, body
    assert "'keys'" in body["status"]["details"]

    at_cap = stub.PostKeys(keys_request(MAX_ITEMS), metadata=auth)
    assert at_cap.status.code == C.SUCCESS, at_cap.status
    assert key_count(stub, auth) == before + MAX_ITEMS

    # The check comes before anything else, authentication included.
    unknown = stub.PostKeys(keys_request(MAX_ITEMS + 1), metadata=Client.auth("sgp_nope"))
    assert unknown.status.code == C.CONN_INVALID_REQUEST, unknown.status


def test_more_concepts_than_sqlite_has_variables_are_refused(server):
    auth = Client.auth(server.create_user(new_id()))
    stub = make_stub(server, "grpc")
    app_id = new_id("a")
    made = stub.PostApps(
        service_pb2.PostAppsRequest(user_app_id=ME, apps=[resources_pb2.App(id=app_id)]),
        metadata=auth,
    )
    assert made.status.code == C.SUCCESS, made.status
    ids = resources_pb2.UserAppIDSet(user_id="me", app_id=app_id)

    # Once answered FAILURE "too many SQL variables" (SQLite takes 32766 at most).
    many = [resources_pb2.Concept(id=f"c{n}") for n in range(40_000)]
    refused = stub.PostConcepts(
        service_pb2.PostConceptsRequest(user_app_id=ids, concepts=many), metadata=auth
    )
    assert refused.status.code == C.CONN_INVALID_REQUEST, refused.status
    assert "'concepts'" in refused.status.details and str(MAX_ITEMS) in refused.status.details

    # Lists inside the items count too, all together.
    per_input = MAX_NESTED_ITEMS // 2 + 1
    inputs = [
        resources_pb2.Input(
            id=f"i{n}",
            data=resources_pb2.Data(
                image=resources_pb2.Image(url="http://127.0.0.1:9/x.png"),
                concepts=[resources_pb2.Concept(id=f"c{k}", value=1) for k in range(per_input)],
            ),
        )
        for n in range(2)
    ]
    refused = stub.PostInputs(
        service_pb2.PostInputsRequest(user_app_id=ids, inputs=inputs), metadata=auth
    )
    assert refused.status.code == C.CONN_INVALID_REQUEST, refused.status
    assert str(MAX_NESTED_ITEMS) in refused.status.details
    assert "inputs[" in refused.status.details and "data.concepts" in refused.status.details


def test_small_requests_and_long_vectors_pass_the_check():
    small = service_pb2.ListKeysRequest(user_app_id=ME, scopes=["All"], per_page=10)
    assert too_many_items(small) is None
    assert too_many_items(keys_request(MAX_ITEMS)) is None
    # Numbers nested in items are vectors, not rows: never counted.
    vector = resources_pb2.Embedding(vector=[0.5] * (2 * MAX_NESTED_ITEMS))
    big_vector = service_pb2.PostInputsRequest(
        inputs=[resources_pb2.Input(data=resources_pb2.Data(embeddings=[vector]))]
    )
    assert too_many_items(big_vector) is None


@contextmanager
def database_held(server: ServerProcess) -> Iterator[None]:
    """Hold the server database's write lock (SQLite) or the keys table (PostgreSQL) from
    another connection, as a long transaction of another process would."""
    if server.database_url is None:
        conn = sqlite3.connect(server.data_dir / "scopegate.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg

    with psycopg.connect(server.database_url.replace("+psycopg", "")) as conn:
        conn.execute("LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE")  # reads still pass
        try:
            yield
        finally:
            conn.rollback()


def test_a_request_kept_waiting_by_a_lock_answers_a_retryable_status(server):
    pat = server.create_user(new_id())
    auth = Client.auth(pat)
    stub = make_stub(server, "grpc")
    assert key_count(stub, auth) == 1  # the caller's PAT is cached: reads need no write
    with database_held(server):
        # Refused over the cap without waiting for the database.
        over = stub.PostKeys(keys_request(MAX_ITEMS + 1), metadata=auth)
        assert over.status.code == C.CONN_INVALID_REQUEST, over.status
        # Answered (once the lock timeout passes) as a status clients retry, not FAILURE.
        status, body = rest(server, pat, "POST", "/v2/users/me/keys", keys_request(1))
    assert status == 503, body
    assert body["status"]["code"] == C.TRY_AGAIN, body
    assert "retry" in body["status"]["details"]
    # Once the other writer is done, the same request succeeds.
    again = stub.PostKeys(keys_request(1), metadata=auth)
    assert again.status.code == C.SUCCESS, again.status


LONG = "x" * 513


@pytest.mark.parametrize("transport", ["grpc", "json"])
def test_descriptions_and_names_are_capped(server, transport):
    auth = Client.auth(server.create_user(new_id()))
    stub = make_stub(server, transport)

    too_long = stub.PostKeys(keys_request(1, description=LONG), metadata=auth)
    assert too_long.status.code == C.CONN_INVALID_REQUEST, too_long.status
    assert "512" in too_long.status.details and "description" in too_long.status.details
    made = stub.PostKeys(keys_request(1, description="x" * 512), metadata=auth)
    assert made.status.code == C.SUCCESS, made.status
    key_id = stub.GetKey(
        service_pb2.GetKeyRequest(user_app_id=ME, key_id=made.keys[0].id), metadata=auth
    ).key.id
    patched = stub.PatchKeys(
        service_pb2.PatchKeysRequest(
            user_app_id=ME,
            action="overwrite",
            keys=[resources_pb2.Key(id=key_id, description=LONG, scopes=["All"])],
        ),
        metadata=auth,
    )
    assert patched.status.code == C.CONN_INVALID_REQUEST, patched.status
    kept = stub.GetKey(service_pb2.GetKeyRequest(user_app_id=ME, key_id=key_id), metadata=auth)
    assert kept.key.description == "x" * 512

    app_id = new_id("a")
    for app in (
        resources_pb2.App(id=app_id, description=LONG),
        resources_pb2.App(id=app_id, name="n" * 256),
    ):
        refused = stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=ME, apps=[app]), metadata=auth
        )
        assert refused.status.code == C.CONN_INVALID_REQUEST, refused.status
    made_app = stub.PostApps(
        service_pb2.PostAppsRequest(
            user_app_id=ME, apps=[resources_pb2.App(id=app_id, name="n" * 255)]
        ),
        metadata=auth,
    )
    assert made_app.status.code == C.SUCCESS, made_app.status
    ids = resources_pb2.UserAppIDSet(user_id="me", app_id=app_id)
    for action in ("overwrite", "merge"):
        patched_app = stub.PatchApps(
            service_pb2.PatchAppsRequest(
                user_app_id=ids,
                action=action,
                apps=[resources_pb2.App(id=app_id, description=LONG)],
            ),
            metadata=auth,
        )
        assert patched_app.status.code == C.CONN_INVALID_REQUEST, patched_app.status
        assert "512" in patched_app.status.details


def test_the_cli_refuses_a_long_description_too(server):
    user = new_id()
    server.create_user(user)
    made = server.cli("keys", "create", "--user", user, "--description", LONG)
    assert made.returncode != 0
    assert "512" in made.stdout + made.stderr
