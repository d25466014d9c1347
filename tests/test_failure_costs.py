"""In process: the failure throttle's bookkeeping and bounds, and which garbage may cost a
database query (legacy-format secrets only once an imported key exists)."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from scopegate.access.address_throttle import AuthFailureThrottle, ThrottledError, address_key
from scopegate.access.authentication import Authenticator
from scopegate.access.invalidation import ChangeWatcher
from scopegate.access.relations import RelationResolver
from scopegate.auth.principal import CredentialKind
from scopegate.contract.status import ApiError, C
from scopegate.services.audit import cli_actor
from scopegate.services.keys import import_key
from scopegate.services.users import sign_up


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "peer, key",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("ipv4:203.0.113.9:51234", "203.0.113.9"),
        ("ipv6:%5B2001:db8:1:2:3:4:5:6%5D:51234", "2001:db8:1:2::/64"),
        ("ipv6:[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::99", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("unix:/run/sg.sock", "unix:/run/sg.sock"),
        ("", ""),
    ],
)
def test_address_key(peer, key):
    assert address_key(peer) == key


def test_limit_per_window_per_address():
    clock = Clock()
    throttle = AuthFailureThrottle(3, 60.0, 0.0, clock=clock)
    assert [throttle.fail("198.51.100.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert throttle.fail("198.51.100.1") == pytest.approx(50.0)
    assert throttle.fail("ipv4:198.51.100.1:9") > 0  # the same address over gRPC
    assert throttle.fail("198.51.100.2") == 0.0
    clock.now += 50
    assert throttle.fail("198.51.100.1") == 0.0  # a new window


def test_limit_zero_turns_it_off():
    throttle = AuthFailureThrottle(0, 60.0, 1.0)
    assert all(throttle.fail("198.51.100.1") == 0.0 for _ in range(1000))


def test_address_table_is_bounded():
    clock = Clock()
    throttle = AuthFailureThrottle(1, 60.0, 0.0, max_addresses=100, clock=clock)
    for n in range(10_000):
        throttle.fail(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    assert len(throttle._windows) <= 100
    # Expired windows are dropped as new ones start.
    clock.now += 61
    throttle.fail("192.0.2.1")
    assert len(throttle._windows) == 1


def test_refuse_delays_then_throttles_and_bounds_the_sleepers():
    throttle = AuthFailureThrottle(1, 60.0, 0.2, max_waiting=2)
    error = ApiError(C.CONN_KEY_INVALID, "Invalid API key")

    async def run():
        assert await throttle.refuse("192.0.2.1", error) is error
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = await asyncio.gather(*(throttle.refuse("192.0.2.1", error) for _ in range(5)))
        return answers, loop.time() - started

    answers, seconds = asyncio.run(run())
    assert all(isinstance(a, ThrottledError) and a.code == C.CONN_THROTTLED for a in answers)
    assert all(a.http_status == 429 and 1 <= a.retry_after <= 60 for a in answers)
    assert seconds >= 0.15  # two of them slept
    assert throttle.waiting == 0 and throttle.throttled == 5


def _lookups(authenticator: Authenticator, secret: str) -> int:
    before = authenticator.store_lookups
    with pytest.raises(ApiError) as raised:
        asyncio.run(authenticator.authenticate("Key " + secret))
    assert raised.value.code == C.CONN_KEY_INVALID
    return authenticator.store_lookups - before


def test_legacy_format_costs_no_query_until_a_key_is_imported(services):
    with services.engine.begin() as conn:
        sign_up(conn, services.hasher, "u1", "u1@example.com", None)
    authenticator = Authenticator(services.engine, services.hasher)
    watcher = ChangeWatcher(
        services.engine, authenticator, RelationResolver(services.engine), poll_seconds=0.01
    )
    watcher.start_position()
    assert authenticator.accept_legacy is False
    assert _lookups(authenticator, secrets.token_hex(16)) == 0
    # A forged secret with a valid checksum still costs its one query.
    assert _lookups(authenticator, "sgp_" + "A" * 30 + _checksum("sgp_" + "A" * 30)) == 1

    legacy = secrets.token_hex(16)
    with services.engine.begin() as conn:
        import_key(
            conn,
            services.hasher,
            secret=legacy,
            kind=CredentialKind.PAT,
            user_id="u1",
            app=None,
            description="",
            scopes=["All"],
            actor=cli_actor("u1"),
        )

    async def one_poll() -> None:
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(one_poll())
    assert authenticator.accept_legacy is True
    principal = asyncio.run(authenticator.authenticate("Key " + legacy))
    assert principal.user_id == "u1"
    # A process started now sees the import at once.
    fresh = Authenticator(services.engine, services.hasher)
    ChangeWatcher(services.engine, fresh, RelationResolver(services.engine)).start_position()
    assert fresh.accept_legacy is True


def _checksum(body: str) -> str:
    from scopegate.auth import tokens

    return tokens._checksum(body)
