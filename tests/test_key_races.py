"""Concurrent changes of one key, app or collaborator against a real server: whichever
request removes a thing succeeds once, and is audited once; every other request on it
answers CONN_DOES_NOT_EXIST (never an internal error, never a second success)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from functools import partial

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from tests.support.clients import Client, make_stub, new_id

C = status_code_pb2
ME = resources_pb2.UserAppIDSet(user_id="me")
ROUNDS = 4
CALLERS = 6  # of each kind, per round


def all_at_once(calls: list[Callable[[], int]]) -> list[int]:
    """Run every call in its own thread, released together; their status codes, in order."""
    barrier = threading.Barrier(len(calls))
    codes: list[int] = [0] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        codes[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def audit_events(stub, auth, action: str, target: str) -> int:
    found = stub.PostAuditLogSearches(
        service_pb2.PostAuditLogSearchesRequest(
            user_app_id=ME, pagination=service_pb2.Pagination(per_page=1000)
        ),
        metadata=auth,
    )
    assert found.status.code == C.SUCCESS, found.status
    return sum(
        1
        for entry in found.entries
        if entry.description == action and f"target={target}" in entry.details
    )


def test_concurrent_delete_and_patch_of_one_key(server):
    auth = Client.auth(server.create_user(new_id()))
    stubs = [make_stub(server, "grpc") for _ in range(2 * CALLERS)]
    for _ in range(ROUNDS):
        race_key(stubs, auth)


def race_key(stubs: list, auth) -> None:
    made = stubs[0].PostKeys(
        service_pb2.PostKeysRequest(
            user_app_id=ME, keys=[resources_pb2.Key(description="raced", scopes=["All"])]
        ),
        metadata=auth,
    )
    assert made.status.code == C.SUCCESS, made.status
    # Created keys show their secret once; lists and the audit log name the public id.
    found = stubs[0].GetKey(
        service_pb2.GetKeyRequest(user_app_id=ME, key_id=made.keys[0].id), metadata=auth
    )
    key_id = found.key.id

    def delete(stub) -> int:
        request = service_pb2.DeleteKeyRequest(user_app_id=ME, key_id=key_id)
        return stub.DeleteKey(request, metadata=auth).status.code

    def patch(stub, n: int) -> int:
        request = service_pb2.PatchKeysRequest(
            user_app_id=ME,
            action="overwrite",
            keys=[resources_pb2.Key(id=key_id, description=f"p{n}", scopes=["All"])],
        )
        return stub.PatchKeys(request, metadata=auth).status.code

    calls = []
    for n in range(CALLERS):
        calls += [partial(delete, stubs[2 * n]), partial(patch, stubs[2 * n + 1], n)]
    codes = all_at_once(calls)
    deleted, patched = Counter(codes[0::2]), Counter(codes[1::2])

    assert deleted == {C.SUCCESS: 1, C.CONN_DOES_NOT_EXIST: CALLERS - 1}, codes
    assert set(patched) <= {C.SUCCESS, C.CONN_DOES_NOT_EXIST}, codes
    assert audit_events(stubs[0], auth, "key.delete", f"key:{key_id}") == 1
    gone = stubs[0].GetKey(service_pb2.GetKeyRequest(user_app_id=ME, key_id=key_id), metadata=auth)
    assert gone.status.code == C.CONN_DOES_NOT_EXIST


def test_concurrent_deletes_of_one_app_and_removals_of_one_collaborator(server):
    owner, other = new_id(), new_id()
    auth = Client.auth(server.create_user(owner))
    server.create_user(other)
    stubs = [make_stub(server, "grpc") for _ in range(CALLERS)]
    for _ in range(ROUNDS):
        race_app(stubs, auth, owner, other)


def race_app(stubs: list, auth, owner: str, other: str) -> None:
    app_id = new_id("a")
    ids = resources_pb2.UserAppIDSet(user_id="me", app_id=app_id)
    made = stubs[0].PostApps(
        service_pb2.PostAppsRequest(user_app_id=ME, apps=[resources_pb2.App(id=app_id)]),
        metadata=auth,
    )
    assert made.status.code == C.SUCCESS, made.status
    added = stubs[0].PostCollaborators(
        service_pb2.PostCollaboratorsRequest(
            user_app_id=ids,
            collaborators=[
                resources_pb2.Collaborator(user=resources_pb2.User(id=other), scopes=["All"])
            ],
        ),
        metadata=auth,
    )
    assert added.status.code == C.SUCCESS, added.status

    def remove(stub) -> int:
        request = service_pb2.DeleteCollaboratorsRequest(user_app_id=ids, collaborator_ids=[other])
        return stub.DeleteCollaborators(request, metadata=auth).status.code

    def delete(stub) -> int:
        request = service_pb2.DeleteAppRequest(user_app_id=ids)
        return stub.DeleteApp(request, metadata=auth).status.code

    once = {C.SUCCESS: 1, C.CONN_DOES_NOT_EXIST: CALLERS - 1}
    codes = all_at_once([partial(remove, stub) for stub in stubs])
    assert Counter(codes) == once, codes
    codes = all_at_once([partial(delete, stub) for stub in stubs])
    assert Counter(codes) == once, codes
    assert audit_events(stubs[0], auth, "app.delete", f"app:{owner}/{app_id}") == 1
    assert audit_events(stubs[0], auth, "collaborator.remove", f"app:{owner}/{app_id}") == 1
