"""Concurrent cache misses share one load, and a load that an eviction overtook is not kept."""

from __future__ import annotations

import asyncio

from scopegate.access.authentication import Authenticator
from scopegate.access.relations import RelationResolver
from scopegate.access.single_flight import SingleFlight
from scopegate.auth import tokens
from scopegate.auth.policy import Relation, Target
from scopegate.auth.principal import CredentialKind, Principal
from scopegate.contract.status import ApiError, C
from scopegate.services.apps import create_app
from tests.support.held import HeldAuthenticator
from tests.support.in_process import sign_up

CALLERS = 64


def test_callers_of_one_key_share_one_load_and_its_failure():
    loads = []

    async def load(value):
        loads.append(value)
        await asyncio.sleep(0.01)
        if value == "bad":
            raise ValueError("no such thing")
        return value.upper()

    async def scenario():
        flight: SingleFlight[str] = SingleFlight()
        good = await asyncio.gather(*(flight.run("k", lambda: load("good")) for _ in range(8)))
        bad = await asyncio.gather(
            *(flight.run("b", lambda: load("bad")) for _ in range(8)), return_exceptions=True
        )
        again = await flight.run("k", lambda: load("again"))  # finished loads are not kept
        return good, bad, again

    good, bad, again = asyncio.run(scenario())
    assert good == ["GOOD"] * 8
    assert all(isinstance(e, ValueError) for e in bad)
    assert again == "AGAIN"
    assert loads == ["good", "bad", "again"]


def test_a_cancelled_caller_leaves_the_load_to_the_others():
    async def scenario():
        flight: SingleFlight[int] = SingleFlight()
        started = asyncio.Event()

        async def load():
            started.set()
            await asyncio.sleep(0.05)
            return 7

        first = asyncio.ensure_future(flight.run("k", load))
        await started.wait()
        second = asyncio.ensure_future(flight.run("k", load))
        first.cancel()
        return await second, first.cancelled()

    assert asyncio.run(scenario()) == (7, True)


def test_concurrent_misses_on_one_secret_cost_one_query(services):
    pat = sign_up(services, "u1")
    unknown = tokens.generate(tokens.SecretKind.PAT)  # well formed, valid checksum, unknown
    authenticator = Authenticator(services.engine, services.hasher)

    async def scenario():
        return await asyncio.gather(
            *(authenticator.authenticate("Key " + pat) for _ in range(CALLERS))
        )

    principals = asyncio.run(scenario())
    assert {p.user_id for p in principals} == {"u1"}
    assert authenticator.store_lookups == 1

    async def garbage():
        return await asyncio.gather(
            *(authenticator.authenticate("Key " + unknown) for _ in range(CALLERS)),
            return_exceptions=True,
        )

    refusals = asyncio.run(garbage())
    assert all(isinstance(e, ApiError) and e.code == C.CONN_KEY_INVALID for e in refusals)
    assert authenticator.store_lookups == 2


def test_a_load_overtaken_by_an_eviction_is_not_cached(services):
    pat = sign_up(services, "u1")
    authenticator = HeldAuthenticator(services.engine, services.hasher)

    async def scenario():
        loading = asyncio.ensure_future(authenticator.authenticate("Key " + pat))
        await asyncio.to_thread(authenticator.reading.wait, 10)
        authenticator.evict("user:u1")  # the key was revoked after the read
        authenticator.go_on.set()
        await loading
        # The next request reads again instead of trusting what the overtaken read saw.
        await authenticator.authenticate("Key " + pat)

    asyncio.run(scenario())
    assert authenticator.store_lookups == 2


def test_concurrent_relation_misses_cost_one_lookup(services):
    sign_up(services, "owner")
    sign_up(services, "stranger")
    with services.engine.begin() as conn:
        create_app(conn, services.hasher, "owner", "public", visibility=50)
    relations = RelationResolver(services.engine)
    stranger = Principal(
        user_id="stranger",
        kind=CredentialKind.PAT,
        credential_id="k1",
        scopes=frozenset({"All"}),
        endpoints=frozenset(),
    )

    async def scenario():
        return await asyncio.gather(
            *(relations.relation(stranger, Target("owner", "public")) for _ in range(CALLERS))
        )

    answers = asyncio.run(scenario())
    assert {standing.relation for standing in answers} == {Relation.PUBLIC}
    assert relations.store_lookups == 1
