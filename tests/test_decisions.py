"""Remembered allows (decisions.py): reused only while everything they rest on is current.

The dispatcher tests drive the real dispatcher, caches and SQLite store in process, so that
the moment a change lands can be chosen exactly; the transports reach the same code.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from scopegate.access.decisions import Allowed, DecisionCache, cacheable
from scopegate.auth.limits import Rate
from scopegate.auth.policy import Relation, Target
from scopegate.auth.principal import CredentialKind
from scopegate.contract.status import C
from scopegate.dispatch import Call, Dispatcher
from scopegate.handlers import Handler, all_handlers
from scopegate.server import serve as server
from scopegate.services.audit import cli_actor
from scopegate.services.keys import issue_key
from scopegate.services.limits import set_user_rates
from scopegate.store import apps, collaborators
from scopegate.store.schema import ID_LENGTH
from tests.support.held import HeldRelations
from tests.support.in_process import sign_up


class _Versioned:
    def __init__(self) -> None:
        self.generation = 0


def _cache(capacity: int = 65_536) -> tuple[DecisionCache, _Versioned, _Versioned]:
    credentials, relations = _Versioned(), _Versioned()
    return DecisionCache(credentials, relations, capacity), credentials, relations


def _allowed(fresh_until: float = 100.0) -> Allowed:
    return Allowed(credential=None, target=Target("u", "a"), fresh_until=fresh_until)


def test_a_kept_decision_is_reused_until_it_expires():
    cache, _, _ = _cache()
    kept = _allowed(fresh_until=100.0)
    cache.put("k", kept, since=0)
    assert cache.get("k", mono=99.9) is kept
    assert cache.get("k", mono=100.0) is None
    assert cache.get("other", mono=1.0) is None


@pytest.mark.parametrize("evicting", ["credentials", "relations"])
def test_any_eviction_in_either_cache_forgets_every_decision(evicting):
    cache, credentials, relations = _cache()
    source = credentials if evicting == "credentials" else relations
    cache.put("k", _allowed(), since=0)
    cache.put("other", _allowed(), since=0)
    source.generation += 1
    assert cache.get("k", mono=1.0) is None
    assert cache.get("other", mono=1.0) is None


def test_a_decision_worked_out_across_an_eviction_is_not_kept():
    cache, _, relations = _cache()
    since = cache.generation()
    relations.generation += 1  # evicted while the decision was being worked out
    cache.put("k", _allowed(), since=since)
    assert cache.get("k", mono=1.0) is None
    cache.put("k", _allowed(), since=1)
    assert cache.get("k", mono=1.0) is not None


def test_the_cache_is_bounded():
    cache, _, _ = _cache(capacity=3)
    for index in range(3):
        cache.put(index, _allowed(), since=0)
    cache.put("fourth", _allowed(), since=0)
    assert cache.get("fourth", mono=1.0) is not None
    assert all(cache.get(index, mono=1.0) is None for index in range(3))


def test_only_ids_a_row_can_hold_are_remembered():
    assert cacheable("u" * ID_LENGTH, "a" * ID_LENGTH)
    assert not cacheable("u" * (ID_LENGTH + 1), "a")
    assert not cacheable("u", "a" * (ID_LENGTH + 1))


# ------------------------------------------------------------------ through the dispatcher


def _call(dispatcher, method: str, secret: str, request) -> int:
    spec = dispatcher.services.catalog.method(method)
    call = Call(spec, request, f"Key {secret}", None, "127.0.0.1")
    response, _error = asyncio.run(dispatcher.dispatch(call))
    return response.status.code


def _ids(app_id: str = "private") -> resources_pb2.UserAppIDSet:
    return resources_pb2.UserAppIDSet(user_id="owner", app_id=app_id)


def _my_scopes(app_id: str = "private") -> service_pb2.MyScopesRequest:
    return service_pb2.MyScopesRequest(user_app_id=_ids(app_id))


def _share(services, scopes: list[str]):
    """owner's private app with guest as a collaborator granted `scopes`: (the dispatcher,
    owner's PAT, guest's PAT)."""
    owner, guest = sign_up(services, "owner"), sign_up(services, "guest")
    dispatcher = server.build_dispatcher(services)
    made = _call(
        dispatcher,
        "PostApps",
        owner,
        service_pb2.PostAppsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
            apps=[resources_pb2.App(id="private")],
        ),
    )
    granted = _call(
        dispatcher,
        "PostCollaborators",
        owner,
        service_pb2.PostCollaboratorsRequest(
            user_app_id=_ids(),
            collaborators=[
                resources_pb2.Collaborator(user=resources_pb2.User(id="guest"), scopes=scopes)
            ],
        ),
    )
    assert (made, granted) == (C.SUCCESS, C.SUCCESS)
    return dispatcher, owner, guest


@pytest.fixture
def shared_app(services):
    """owner's private app with guest as a collaborator (All); the dispatcher; both PATs."""
    return _share(services, ["All"])


def test_removing_a_collaborator_ends_a_remembered_allow(shared_app):
    dispatcher, owner, guest = shared_app
    assert _call(dispatcher, "MyScopes", guest, _my_scopes()) == C.SUCCESS
    assert _call(dispatcher, "MyScopes", guest, _my_scopes()) == C.SUCCESS  # remembered
    removed = _call(
        dispatcher,
        "DeleteCollaborators",
        owner,
        service_pb2.DeleteCollaboratorsRequest(user_app_id=_ids(), collaborator_ids=["guest"]),
    )
    assert removed == C.SUCCESS
    assert _call(dispatcher, "MyScopes", guest, _my_scopes()) == C.CONN_DOES_NOT_EXIST


def test_a_remembered_allow_still_checks_expiry_and_records_use(services):
    sign_up(services, "owner")
    with services.engine.begin() as conn:
        key_id, secret = issue_key(
            conn,
            services.hasher,
            kind=CredentialKind.PAT,
            user_id="owner",
            app=None,
            description="short-lived",
            scopes=["All"],
            expires_at=datetime.now(UTC) + timedelta(seconds=1.5),
        )
    dispatcher = server.build_dispatcher(services)
    request = service_pb2.MyScopesRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me"))
    assert _call(dispatcher, "MyScopes", secret, request) == C.SUCCESS
    dispatcher.authenticator.take_last_used()
    assert _call(dispatcher, "MyScopes", secret, request) == C.SUCCESS  # remembered
    assert key_id in dispatcher.authenticator.take_last_used()
    time.sleep(1.6)
    assert _call(dispatcher, "MyScopes", secret, request) == C.CONN_KEY_INVALID


def test_a_key_sent_as_a_session_token_is_refused_even_once_remembered(shared_app):
    dispatcher, _owner, guest = shared_app
    assert _call(dispatcher, "MyScopes", guest, _my_scopes()) == C.SUCCESS
    spec = dispatcher.services.catalog.method("MyScopes")
    call = Call(spec, _my_scopes(), None, guest, "127.0.0.1")
    response, _error = asyncio.run(dispatcher.dispatch(call))
    assert response.status.code == C.CONN_KEY_INVALID


def test_an_allow_worked_out_from_an_overtaken_read_is_not_remembered(shared_app):
    built, _owner, guest = shared_app
    held = HeldRelations(built.services.engine)
    dispatcher = Dispatcher(built.services, built.authenticator, all_handlers(), held)
    spec = dispatcher.services.catalog.method("MyScopes")

    async def scenario():
        call = Call(spec, _my_scopes(), f"Key {guest}", None, "127.0.0.1")
        first = asyncio.ensure_future(dispatcher.dispatch(call))
        await asyncio.to_thread(held.reading.wait, 10)
        # The grant goes after the read and before the answer.
        with dispatcher.services.engine.begin() as conn:
            app = apps.get(conn, "owner", "private")
            collaborators.remove(conn, app.pk, "guest")
        held.evict_app("owner", "private")
        held.go_on.set()
        answered, _ = await first
        call = Call(spec, _my_scopes(), f"Key {guest}", None, "127.0.0.1")
        again, _ = await dispatcher.dispatch(call)
        return answered.status.code, again.status.code

    # The request in flight answers from what it read; the next one does not reuse it.
    assert asyncio.run(scenario()) == (C.SUCCESS, C.CONN_DOES_NOT_EXIST)


def test_an_eviction_while_a_request_awaits_does_not_lift_its_limits(shared_app):
    """A request is held to the limits of the credential it was admitted with: a change
    evicting that credential while the request awaits its relation read must not let it
    through unlimited (README, Limits)."""
    built, _owner, guest = shared_app
    with built.services.engine.begin() as conn:
        set_user_rates(conn, "guest", (Rate(1, 60),), actor=cli_actor("guest"))
    assert _call(built, "MyScopes", guest, _my_scopes()) == C.SUCCESS  # the one of the minute
    held = HeldRelations(built.services.engine)
    # The same credentials' cache and rate counters, a relation cache that has read nothing.
    dispatcher = Dispatcher(
        built.services, built.authenticator, all_handlers(), held, limiter=built.limiter
    )
    spec = dispatcher.services.catalog.method("MyScopes")

    async def scenario():
        call = Call(spec, _my_scopes(), f"Key {guest}", None, "127.0.0.1")
        second = asyncio.ensure_future(dispatcher.dispatch(call))
        await asyncio.to_thread(held.reading.wait, 10)
        built.authenticator.evict_all()  # a change to the key, from any process
        held.go_on.set()
        answered, _ = await second
        return answered.status.code

    assert asyncio.run(scenario()) == C.CONN_THROTTLED


def test_the_standing_and_effective_scopes_reach_the_handler_and_observers_on_a_repeat(services):
    """A collaborator granted a few scopes, calling with an `All` PAT: what runs after
    authorization sees its relation and the grant's scopes, the same on the remembered path."""
    dispatcher, owner, guest = _share(
        services, ["Inputs_Get", "Annotations_Get", "Apps_Get", "Concepts_Get"]
    )
    seen: list = []

    class Observer:
        def observe(self, outcome):
            seen.append(("outcome", outcome.relation, outcome.scopes))

    def handler(context, _request):
        seen.append(("context", context.relation, context.scopes))
        return service_pb2.MultiInputResponse()

    dispatcher.observers.append(Observer())
    spec = dispatcher.services.catalog.method("ListInputs")
    for _ in range(2):  # worked out, then remembered
        request = service_pb2.ListInputsRequest(user_app_id=_ids())
        call = Call(spec, request, f"Key {guest}", None, "127.0.0.1", handler=Handler(handler))
        response, _ = asyncio.run(dispatcher.dispatch(call))
        assert response.status.code == C.SUCCESS
    own = service_pb2.ListInputsRequest(user_app_id=_ids())
    call = Call(spec, own, f"Key {owner}", None, "127.0.0.1", handler=Handler(handler))
    asyncio.run(dispatcher.dispatch(call))
    granted_scopes = frozenset({"Inputs_Get", "Annotations_Get", "Apps_Get", "Concepts_Get"})
    assert seen == [
        ("context", Relation.COLLABORATOR, granted_scopes),
        ("outcome", Relation.COLLABORATOR, granted_scopes),
        ("context", Relation.COLLABORATOR, granted_scopes),
        ("outcome", Relation.COLLABORATOR, granted_scopes),
        ("context", Relation.OWNER, frozenset({"All"})),
        ("outcome", Relation.OWNER, frozenset({"All"})),
    ]
