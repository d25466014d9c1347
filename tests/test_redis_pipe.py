"""The pipelined Redis connection under the shared rate limits (access/redis_pipe.py), against
a real redis-server: replies reach their callers in order, error replies, a script Redis
forgot, a Redis that does not answer, passwords, databases, Unix sockets and TLS."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import pytest

from scopegate.access.rate_windows import Window
from scopegate.access.redis_pipe import RedisPipe, RedisReplyError, RedisUnavailable
from scopegate.access.redis_rates import RedisRates, StoreUnavailable
from tests.support import redis_server, tls
from tests.support.server_process import free_port

pytestmark = pytest.mark.skipif(
    redis_server.available() is not None, reason=str(redis_server.available())
)


@pytest.fixture
def redis(tmp_path):
    server = redis_server.RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_commands_get_their_own_replies_in_one_connection(redis):
    async def scenario():
        pipe = RedisPipe(redis.url)

        # Each caller increments its own counter a different number of times, all at once.
        async def caller(n: int) -> list:
            return [await pipe.call("INCR", f"c{n}") for _ in range(n)]

        answers = await asyncio.gather(*(caller(n) for n in range(1, 41)))
        clients = await pipe.call("CLIENT", "LIST")
        await pipe.close()
        return answers, clients

    answers, clients = run(scenario())
    assert answers == [list(range(1, n + 1)) for n in range(1, 41)]
    assert clients.count(b"cmd=client|list") == 1  # one connection carried them all


def test_error_replies_are_returned_not_raised_and_the_connection_goes_on(redis):
    async def scenario():
        pipe = RedisPipe(redis.url)
        missing = await pipe.call("EVALSHA", "0" * 40, 0)
        wrong = await pipe.call("NOSUCHCOMMAND")
        after = await pipe.call("PING")
        await pipe.close()
        return missing, wrong, after

    missing, wrong, after = run(scenario())
    assert isinstance(missing, RedisReplyError) and str(missing).startswith("NOSCRIPT")
    assert isinstance(wrong, RedisReplyError) and "unknown command" in str(wrong)
    assert after == b"PONG"


def test_rates_survive_redis_forgetting_the_script(redis):
    windows = (Window("k:test:3/60", 3, 60),)

    async def scenario():
        rates = RedisRates(redis.url)
        first = await rates.hit(windows)
        await rates._pipe.call("SCRIPT", "FLUSH")  # as after a restart of Redis
        second = await rates.hit(windows)
        third = await rates.hit(windows)
        fourth = await rates.hit(windows)
        await rates.close()
        return rates.failures, [first, second, third, fourth]

    failures, results = run(scenario())
    assert failures == 0
    assert [r.refused for r in results] == [-1, -1, -1, 0]
    assert [r.remaining[0] for r in results] == [2, 1, 0, 0]


def test_rates_hold_every_window_of_a_check(redis):
    key, user = Window("k:test:3/60", 3, 60), Window("u:test:2/60", 2, 60)

    async def scenario():
        rates = RedisRates(redis.url)
        both = [await rates.hit((key, user)) for _ in range(3)]
        alone = await rates.hit((key,))  # the user's window refused the third: not counted
        await rates.close()
        return both, alone

    both, alone = run(scenario())
    assert [r.refused for r in both] == [-1, -1, 1]
    assert [r.remaining for r in both] == [[2, 1], [1, 0], [0, 0]]
    assert alone.refused == -1 and alone.remaining == [0]


def silent_server():
    """A TCP listener that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener, accepted


def test_a_redis_that_does_not_answer_fails_every_waiting_command_after_the_timeout():
    listener, accepted = silent_server()
    port = listener.getsockname()[1]

    async def scenario():
        pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcomes = await asyncio.gather(
            *(pipe.call("PING") for _ in range(5)), return_exceptions=True
        )
        return outcomes, loop.time() - started

    try:
        outcomes, waited = run(scenario())
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert all(isinstance(o, RedisUnavailable) for o in outcomes), outcomes
    assert "did not answer within 0.2s" in str(outcomes[0])
    assert 0.15 < waited < 2


@pytest.mark.parametrize("fail_open", [True, False])
def test_rates_follow_the_failure_policy_when_nothing_listens(fail_open, caplog):
    windows = (Window("k:test:1/60", 1, 60),)
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    async def scenario():
        rates = RedisRates(url, fail_open=fail_open)
        try:
            return [await rates.hit(windows), await rates.hit(windows)], rates.failures
        finally:
            await rates.close()

    caplog.set_level(logging.WARNING, "scopegate.access.redis_rates")
    if not fail_open:
        with pytest.raises(StoreUnavailable):
            run(scenario())
        return
    results, failures = run(scenario())
    assert failures == 1  # the second check did not ask Redis again (within a second)
    assert [r.refused for r in results] == [-1, 0]  # counted in this process meanwhile
    assert "cannot connect to Redis" in caplog.text


def test_password_and_database_from_the_url(tmp_path):
    server = redis_server.RedisServer(tmp_path / "redis", ("--requirepass", "s3cret")).start()
    base = f"redis://:s3cret@127.0.0.1:{server.port}"

    async def scenario():
        in_three = RedisPipe(base + "/3")
        in_zero = RedisPipe(base + "/0")
        wrong = RedisPipe(f"redis://:nope@127.0.0.1:{server.port}/0")
        await in_three.call("SET", "where", "three")
        seen = await in_zero.call("GET", "where"), await in_three.call("GET", "where")
        with pytest.raises(RedisUnavailable) as refused:
            await wrong.call("PING")
        for pipe in (in_three, in_zero, wrong):
            await pipe.close()
        return seen, str(refused.value)

    try:
        seen, refused = run(scenario())
    finally:
        server.stop()
    assert seen == (None, b"three")
    assert refused.startswith("Redis refused AUTH") and "s3cret" not in refused


def test_unix_socket(tmp_path):
    path = tmp_path / "redis.sock"
    server = redis_server.RedisServer(
        tmp_path / "redis", ("--unixsocket", str(path), "--unixsocketperm", "700")
    ).start()

    async def scenario():
        pipe = RedisPipe(f"unix://{path}?db=2")
        await pipe.call("SET", "k", "v")
        info = await pipe.call("CLIENT", "INFO")
        await pipe.close()
        return info

    try:
        info = run(scenario())
    finally:
        server.stop()
    assert b" db=2 " in info and b"flags=U" in info  # a Unix-socket client, in database 2


@pytest.mark.skipif(tls.openssl_missing() is not None, reason=str(tls.openssl_missing()))
def test_tls_checks_the_certificate(tmp_path, monkeypatch):
    cert = tls.self_signed(tmp_path / "certs")
    tls_port = free_port()
    server = redis_server.RedisServer(
        tmp_path / "redis",
        (
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(cert.cert),
            "--tls-key-file", str(cert.key),
            "--tls-ca-cert-file", str(cert.cert),
            "--tls-auth-clients", "no",
        ),
    ).start()  # fmt: skip
    url = f"rediss://localhost:{tls_port}/0"

    async def ping():
        pipe = RedisPipe(url, timeout=2)
        try:
            return await pipe.call("PING")
        finally:
            await pipe.close()

    try:
        with pytest.raises(RedisUnavailable, match="cannot connect"):
            run(ping())  # the test certificate is not trusted yet
        monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))
        assert run(ping()) == b"PONG"
    finally:
        server.stop()
