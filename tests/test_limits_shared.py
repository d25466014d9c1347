"""Limits held across processes: a usage quota never over-spent across a restart and two
servers on one database (SQLite and PostgreSQL); a rate shared by two servers through a
real Redis, and what happens when Redis dies (`--limits-on-store-failure`); the client
behind a trusted proxy; the server's default rate."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support import redis_server
from tests.support.clients import new_id
from tests.support.limits import call, new_key, put_limits, remaining
from tests.support.server_process import ServerProcess
from tests.support.servers import BACKENDS, SERVER_ENV

REDIS_MISSING = redis_server.available()


def database(request, backend: str) -> str | None:
    if backend == "sqlite":
        return None
    cluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database(f"sg_{uuid.uuid4().hex[:12]}")


def servers(tmp_path, url, count=2, args=(), env=None) -> list[ServerProcess]:
    """`count` servers on one database and one server secret (one data dir)."""
    data_dir = tmp_path / "data"
    started = []
    for _ in range(count):
        started.append(
            ServerProcess(
                data_dir=data_dir,
                database_url=url,
                extra_env={**SERVER_ENV, **(env or {})},
                extra_args=list(args),
            ).start()
        )
    return started


def stop_all(processes):
    for process in processes:
        assert process.stop() == 0, process.log()


def limited_owner(server: ServerProcess):
    user_id = new_id()
    pat = server.create_user(user_id)
    secret, key_id = new_key(server, user_id)
    return user_id, pat, secret, key_id


def set_on(server, owner, body):
    user_id, pat, _, key_id = owner
    reply = put_limits(server, pat, user_id, key_id, body)
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_quota_is_exact_across_a_restart(request, tmp_path, backend):
    url = database(request, backend)
    (first,) = servers(tmp_path, url, count=1)
    owner = limited_owner(first)
    set_on(first, owner, {"usage": {"remaining": 300}})
    admitted = sum(call(first, "rest", owner[2]).code == codes.SUCCESS for _ in range(100))
    assert admitted == 100
    assert first.stop() == 0, first.log()  # gives back what its lease left unspent
    (second,) = servers(tmp_path, url, count=1)
    try:
        assert remaining(second, owner) == 200
        answers = [call(second, "grpc", owner[2]).code for _ in range(201)]
        assert answers.count(codes.SUCCESS) == 200
        assert answers[-1] == codes.CONN_EXCEEDS_LIMITS
    finally:
        stop_all([second])


@pytest.mark.parametrize("backend", BACKENDS)
def test_quota_is_exact_across_two_servers_at_once(request, tmp_path, backend):
    url = database(request, backend)
    both = servers(tmp_path, url)
    try:
        owner = limited_owner(both[0])
        quota = 120
        set_on(both[0], owner, {"usage": {"remaining": quota}})
        counts = {"ok": 0, "over": 0}
        lock = threading.Lock()

        def hammer(server, transport):
            # Each thread goes on until its server refuses twice in a row: by then every
            # lease it held is spent.
            refusals = 0
            while refusals < 2:
                code = call(server, transport, owner[2]).code
                with lock:
                    counts["ok" if code == codes.SUCCESS else "over"] += 1
                refusals = refusals + 1 if code == codes.CONN_EXCEEDS_LIMITS else 0
                if code not in (codes.SUCCESS, codes.CONN_EXCEEDS_LIMITS):
                    raise AssertionError(code)

        threads = [
            threading.Thread(target=hammer, args=(server, transport))
            for server in both
            for transport in ("rest", "grpc", "rest")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert counts["ok"] == quota
        assert remaining(both[1], owner) == 0
    finally:
        stop_all(both)


@pytest.fixture
def redis(tmp_path):
    if REDIS_MISSING:
        pytest.skip(REDIS_MISSING)
    instance = redis_server.RedisServer(tmp_path / "redis").start()
    yield instance
    instance.stop()


def test_two_servers_share_a_rate_through_redis(tmp_path, redis):
    both = servers(tmp_path, None, args=("--redis-url", redis.url))
    try:
        owner = limited_owner(both[0])
        set_on(both[0], owner, {"rate_limits": ["10/m"]})
        time.sleep(0.6)  # the other server learns of the change from the change log
        codes_seen = [
            call(both[i % 2], ("rest", "grpc")[i % 3 % 2], owner[2]).code for i in range(30)
        ]
        assert codes_seen.count(codes.SUCCESS) == 10
        assert codes_seen.count(codes.CONN_THROTTLED) == 20
    finally:
        stop_all(both)


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_dying_mid_run_behaves_as_configured(tmp_path, redis, policy):
    (server,) = servers(
        tmp_path,
        None,
        count=1,
        args=("--redis-url", redis.url, "--limits-on-store-failure", policy),
    )
    try:
        owner = limited_owner(server)
        set_on(server, owner, {"rate_limits": ["3/m"]})
        first = [call(server, "rest", owner[2]).code for _ in range(2)]
        assert first == [codes.SUCCESS] * 2
        redis.stop()
        after = [call(server, "rest", owner[2]) for _ in range(4)]
        if policy == "open":
            # Counted in this process from then on: 3 more, then throttled.
            assert [a.code for a in after] == [codes.SUCCESS] * 3 + [codes.CONN_THROTTLED]
            assert "Redis unavailable" in server.log()
        else:
            assert {a.code for a in after} == {codes.CONN_THROTTLED}
            assert {a.http_status for a in after} == {503}
            assert "unavailable" in after[0].details
        # An unlimited credential is not affected either way.
        assert call(server, "rest", owner[1]).code == codes.SUCCESS
    finally:
        stop_all([server])


def test_limits_changed_on_one_server_reach_the_other(tmp_path):
    both = servers(tmp_path, None)
    try:
        owner = limited_owner(both[0])
        assert call(both[1], "rest", owner[2]).code == codes.SUCCESS  # cached there, unlimited
        set_on(both[0], owner, {"allowed_ips": ["203.0.113.0/24"]})
        deadline = time.monotonic() + 2.0  # the change log is read every 0.25 s
        while call(both[1], "grpc", owner[2]).code == codes.SUCCESS:
            assert time.monotonic() < deadline, "the other server still admits the key"
            time.sleep(0.05)
        assert call(both[1], "rest", owner[2]).code == codes.CONN_KEY_INVALID
    finally:
        stop_all(both)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_a_trusted_proxy_names_the_client(tmp_path, transport):
    (server,) = servers(tmp_path, None, count=1, args=("--trusted-proxy", "127.0.0.1/32"))
    try:
        owner = limited_owner(server)
        set_on(server, owner, {"allowed_ips": ["203.0.113.0/24"]})
        assert call(server, transport, owner[2]).code == codes.CONN_KEY_INVALID
        allowed = call(server, transport, owner[2], forwarded="198.51.100.1, 203.0.113.9")
        assert allowed.code == codes.SUCCESS, allowed.details
        # The last untrusted hop decides: a client writing an allowed address first is not
        # believed.
        spoofed = call(server, transport, owner[2], forwarded="203.0.113.9, 198.51.100.1")
        assert spoofed.code == codes.CONN_KEY_INVALID
    finally:
        stop_all([server])


def test_the_default_rate_holds_keys_without_their_own(tmp_path):
    (server,) = servers(tmp_path, None, count=1, env={"SCOPEGATE_DEFAULT_RATE_LIMIT": "2/m"})
    try:
        owner = limited_owner(server)
        answers = [call(server, "rest", owner[2]) for _ in range(3)]
        assert [a.code for a in answers] == [codes.SUCCESS] * 2 + [codes.CONN_THROTTLED]
        assert answers[0].headers["ratelimit-policy"] == '"2-per-60s";q=2;w=60'
        # A key's own rate replaces the default.
        set_on(server, owner, {"rate_limits": ["100/m"]})
        assert call(server, "rest", owner[2]).code == codes.SUCCESS
    finally:
        stop_all([server])
