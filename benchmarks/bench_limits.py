"""16. What per-key limits cost, and how exactly a shared rate holds.

Throughput: on one server (SQLite), `MyScopes` with two PATs of one user in alternating
rounds (A B B A ...), one without limits and one with a rate it never reaches
(`100000/s`), over REST and gRPC; the same on a server counting rates in Redis
(`--redis-url`, a local redis-server); and a PAT with a usage quota it never exhausts
(10^9, leases from the database) against the unlimited one. Targets: in-memory >= 0.9,
Redis >= 0.8, quota >= 0.8 of the unlimited throughput.

Accuracy: two servers sharing one Redis, a key limited to 100/s, loaded at 3x the limit
(150 requests per second paced to each server) for 10 s; admitted requests per second
(aligned 1 s buckets from the start) and over the run, against the limit (target within
+-5 %).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time

from benchmarks import loadgen
from benchmarks.bench_throughput import GRPC_CONCURRENCY, PYTHON_REST_CONNECTIONS, REST_CONNECTIONS
from benchmarks.common import Result, log, median, process_cpu_seconds, stop_server, temp_dir

NAME = "16. per-key limits"
METHOD = "MyScopes"
FREE, LIMITED = "unlimited", "limited"
TARGETS = {"in-memory rate": 0.9, "Redis rate": 0.8, "usage quota": 0.8}
ACCURACY_LIMIT, ACCURACY_LOAD, ACCURACY_SECONDS = 100, 3, 10
CLIENTS_PER_SERVER = 6


def _order(pairs: int) -> list[str]:
    order = []
    for i in range(pairs):
        order += [FREE, LIMITED] if i % 2 == 0 else [LIMITED, FREE]
    return order


def _limited_pat(server, user_id: str, body: dict) -> str:
    return _limited_key(server, user_id, body)[0]


def _limited_key(server, user_id: str, body: dict) -> tuple[str, str]:
    """(secret, public id) of a second PAT of `user_id` with `body` as its limits (set
    through the service)."""
    from tests.support.limits import new_key

    return new_key(server, user_id, limits=body)


def _compare(
    label, server, free, limited, duration, pairs, results, details, redis_pid=None
) -> None:
    """Rounds of MyScopes with the unlimited and the limited credential, alternating. Each
    round also records the server's CPU per request and, with Redis, Redis's: on two cores
    both come out of the same budget as the load generator's."""
    use_wrk = loadgen.wrk_path() is not None
    connections = REST_CONNECTIONS if use_wrk else PYTHON_REST_CONNECTIONS
    secrets = {FREE: free, LIMITED: limited}

    def measured(go):
        def round_of(mode: str, seconds: float = duration):
            before = process_cpu_seconds(redis_pid) if redis_pid else None
            result = go(mode, seconds)
            after = process_cpu_seconds(redis_pid) if redis_pid else None
            result.helper_cpu_us = (
                (after - before) / result.requests * 1e6
                if before is not None and after is not None and result.requests
                else None
            )
            return result

        return round_of

    def rest(mode: str, seconds: float = duration):
        result = loadgen.start_http(
            f"{server.http_url}/v2/myscopes",
            duration=seconds,
            connections=connections,
            headers={"authorization": "Key " + secrets[mode]},
            server_pid=server.process.pid,
        ).wait(seconds + 30)
        result.label = mode
        return result

    def grpc(mode: str, seconds: float = duration):
        (result,) = loadgen.start_grpc(
            server.grpc_address,
            [METHOD],
            duration=seconds,
            concurrency=GRPC_CONCURRENCY,
            secret=secrets[mode],
            server_pid=server.process.pid,
        ).wait_all(seconds + 60)
        result.label = mode
        return result

    for transport, go in (("REST", measured(rest)), ("gRPC", measured(grpc))):
        log(f"{NAME}: {label}, {transport}: warm-up then {pairs} pairs of {duration}s rounds")
        go(FREE, 1.0)
        go(LIMITED, 1.0)
        runs = [go(mode) for mode in _order(pairs)]
        rps = {}
        for mode in (FREE, LIMITED):
            rounds = [r for r in runs if r.label == mode]
            seconds = sum(r.seconds for r in rounds)
            rps[mode] = sum(r.requests for r in rounds) / seconds if seconds else 0.0
        ratio = rps[LIMITED] / rps[FREE] if rps[FREE] else float("nan")
        limited_runs = [r for r in runs if r.label == LIMITED]
        free_runs = [r for r in runs if r.label == FREE]
        pair_ratios = [
            a.rps / b.rps for a, b in zip(limited_runs, free_runs, strict=True) if b.rps
        ] or [float("nan")]
        target = TARGETS[label]
        results.append(
            Result(
                NAME,
                f"{label}, {transport}: limited / unlimited",
                ratio,
                "",
                f">= {target}",
                ratio >= target,
                f"{rps[LIMITED]:,.0f} vs {rps[FREE]:,.0f} req/s; median of pairs "
                f"{median(pair_ratios):.3f}",
            )
        )
        bad = sum(r.non_ok + r.errors for r in runs)
        if bad:
            results.append(Result(NAME, f"{label}, {transport}: non-success", bad, "", "0", False))
        details.append(f"**{label}, {transport}** ({runs[0].tool}), rounds in the order run:")
        details.append("")
        details.append(
            "| round | credential | req/s | p50 ms | p99 ms | server CPU µs/req "
            "| Redis CPU µs/req |"
        )
        details.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for i, run in enumerate(runs):
            cpu, redis_cpu = run.server_cpu_us_per_request, run.helper_cpu_us
            details.append(
                f"| {i + 1} | {run.label} | {run.rps:,.0f} | {run.p50_us / 1000:.1f} | "
                f"{run.p99_us / 1000:.1f} | {'' if cpu is None else f'{cpu:.0f}'} | "
                f"{'' if redis_cpu is None else f'{redis_cpu:.0f}'} |"
            )
        details.append("")


def _paced(server, secret: str, per_second: float, seconds: float, start: float, out: list):
    """Requests to `server` every 1/per_second s from `start` for `seconds`: (when it was
    decided, as the midpoint of sending and answer, from `start`; admitted) each."""
    import requests

    session = requests.Session()
    headers = {"authorization": f"Key {secret}"}
    url = f"{server.http_url}/v2/myscopes"
    n = int(per_second * seconds)
    for i in range(n):
        at = start + i / per_second
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent = time.monotonic()
        reply = session.get(url, headers=headers, timeout=10)
        out.append(((sent + time.monotonic()) / 2 - start, reply.status_code == 200))


# Every admission's time on Redis's clock: the window's sorted set, read every 0.1 s by a
# process of its own (an entry stays in the set for a whole window; the load's threads
# would starve a thread of this one), members unique per request; printed as JSON at the
# end (when its standard input closes).
RECORDER = """
import json, sys, threading, redis
client = redis.Redis.from_url(sys.argv[1])
seen, done = {}, threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while True:
    for member, score in client.zrange(sys.argv[2], 0, -1, withscores=True):
        seen[member.decode()] = score
    if done.wait(0.1):
        break
print(json.dumps(seen))
"""


def _accuracy(base_dir, redis_url: str, results, details, seconds: float) -> None:
    from tests.support.server_process import ServerProcess

    data_dir = base_dir / "shared"
    servers = []
    admitted_at: dict = {}
    try:
        for _ in range(2):
            servers.append(
                ServerProcess(
                    data_dir=data_dir, database_url=None, extra_args=["--redis-url", redis_url]
                ).start()
            )
        servers[0].create_user("accuracy")
        secret, key_id = _limited_key(
            servers[0], "accuracy", {"rate_limits": [f"{ACCURACY_LIMIT}/s"]}
        )
        for server in servers:  # both load the key with its limits
            _paced(server, secret, 20, 0.25, time.monotonic(), [])
        time.sleep(1.5)  # the warm-up's window has passed
        # Six paced clients per server: one slow answer does not hold back the others.
        per_client = ACCURACY_LIMIT * ACCURACY_LOAD / 2 / CLIENTS_PER_SERVER
        log(f"{NAME}: accuracy, 2 servers on Redis at {ACCURACY_LOAD}x {ACCURACY_LIMIT}/s")
        outcomes: list[list] = [[] for _ in range(2 * CLIENTS_PER_SERVER)]
        window = f"scopegate:rl:k:{key_id}:{ACCURACY_LIMIT}/1"
        recorder = subprocess.Popen(
            [sys.executable, "-c", RECORDER, redis_url, window],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)  # the recorder is reading before the load starts
        start = time.monotonic() + 0.2
        threads = [
            threading.Thread(
                target=_paced,
                args=(servers[i % 2], secret, per_client, seconds, start, outcomes[i]),
            )
            for i in range(2 * CLIENTS_PER_SERVER)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.3)
        admitted_at.update(json.loads(recorder.communicate("", timeout=30)[0]))
    finally:
        for server in servers:
            stop_server(server)
    sent = [o for outcome in outcomes for o in outcome]
    answered_ok = sum(ok for _, ok in sent)
    # On Redis's clock (microseconds): whole seconds from the first admission.
    times = sorted(admitted_at.values())
    first = times[0]
    buckets = [0] * int((times[-1] - first) // 1e6 + 1)
    for at in times:
        buckets[int((at - first) // 1e6)] += 1
    full = buckets[:-1] or buckets  # the last second is cut short by the end of the load
    sent_per_second = len(sent) / seconds
    overall = sum(full) / (ACCURACY_LIMIT * len(full))
    per_second = [b / ACCURACY_LIMIT for b in full]
    results.append(
        Result(
            NAME,
            "accuracy: admitted / limit over the run (2 servers, Redis)",
            overall,
            "",
            "0.95..1.05",
            0.95 <= overall <= 1.05,
            f"{sum(full)} admitted in {len(full)} whole seconds of Redis time; "
            f"{answered_ok} answered 200 of {len(sent)} sent (~{sent_per_second:.0f}/s)",
        )
    )
    worst = max(per_second, key=lambda r: abs(r - 1.0))
    results.append(
        Result(
            NAME,
            "accuracy: admitted / limit per second, farthest from 1",
            worst,
            "",
            "0.95..1.05",
            0.95 <= worst <= 1.05,
            "per second: " + " ".join(f"{r:.2f}" for r in per_second),
        )
    )
    details.append(
        f"**accuracy**: {len(sent)} requests paced over {seconds:g} s ({ACCURACY_LOAD}x the "
        f"limit, half to each server); admissions read off the window's sorted set, on "
        f"Redis's clock: {len(times)} in all ({answered_ok} answers 200), per whole second "
        "from the first: " + ", ".join(str(b) for b in buckets) + " (the last second is cut "
        "short by the end of the load and left out of the ratios). Requests answered per "
        "second, on the clients' clock (a second below 100 admitted is one where the loaded "
        "machine did not deliver the load): "
        + ", ".join(str(n) for n in _answered_per_second(sent))
    )
    details.append("")


def _answered_per_second(sent: list) -> list[int]:
    counts = [0] * (int(max(at for at, _ in sent)) + 1)
    for at, _ in sent:
        if at >= 0:
            counts[int(at)] += 1
    return counts


def _in_process(redis_url: str | None, quick: bool, results, details) -> None:
    """CPU time of dispatching `MyScopes` with each credential through one dispatcher, 16
    calls in flight, in interleaved batches: where load elsewhere on the machine cannot hide
    it. Redis's own CPU (another process) is not in these figures."""
    import asyncio

    from clarifai_grpc.grpc.api import service_pb2

    from benchmarks.common import open_services, sign_up
    from scopegate.access.redis_rates import RedisRates
    from scopegate.auth.limits import from_document
    from scopegate.auth.principal import CredentialKind
    from scopegate.dispatch import Call
    from scopegate.server.serve import build_dispatcher
    from scopegate.services import keys, limits
    from scopegate.services.audit import cli_actor

    batch, rounds = (1_600, 3) if quick else (4_000, 6)
    with temp_dir("sg-bench-limits-inproc-") as where:
        services = open_services(where)
        secrets = {FREE: sign_up(services, "bench")}
        bodies = {
            "in-memory rate": {"rate_limits": ["100000/s"]},
            "usage quota": {"usage": {"remaining": 10**9}},
            "Redis rate": {"rate_limits": ["100000/s"]},
        }
        for label, body in bodies.items():
            with services.engine.begin() as conn:
                record, secret = keys.create_key(
                    conn,
                    services.hasher,
                    kind=CredentialKind.PAT,
                    user_id="bench",
                    app=None,
                    description=label,
                    scopes={"All"},
                    actor=cli_actor("bench"),
                )
                limits.set_key_limits(conn, record, from_document(body), actor=cli_actor("bench"))
            secrets[label] = secret
        cells = [FREE, "in-memory rate", "usage quota"] + (["Redis rate"] if redis_url else [])
        spec = services.catalog.method("MyScopes")

        async def measure(cell: str, count: int) -> float:
            dispatcher.limiter.redis = redis if cell == "Redis rate" else None
            header = f"Key {secrets[cell]}"

            async def one(n: int) -> None:
                for _ in range(n):
                    call = Call(spec, service_pb2.MyScopesRequest(), header, None, "127.0.0.1")
                    _, error = await dispatcher.dispatch(call)
                    assert error is None, error

            started = time.process_time()
            await asyncio.gather(*(one(count // 16) for _ in range(16)))
            return time.process_time() - started

        async def all_rounds() -> dict[str, float]:
            for cell in cells:
                await measure(cell, 800)  # warm-up: caches, leases, the script
            spent = dict.fromkeys(cells, 0.0)
            for i in range(rounds):
                for cell in cells if i % 2 == 0 else cells[::-1]:
                    spent[cell] += await measure(cell, batch)
            if redis is not None:
                await redis.close()
            return {cell: seconds / (batch * rounds) * 1e6 for cell, seconds in spent.items()}

        dispatcher = build_dispatcher(services)
        redis = None

        async def main() -> dict[str, float]:
            nonlocal redis
            redis = RedisRates(redis_url) if redis_url else None
            return await all_rounds()

        per_request = asyncio.run(main())
        services.engine.dispose()
    details.append(
        f"**In process** (dispatch only, no transport; CPU time of this process over {rounds} "
        f"interleaved batches of {batch:,} calls per credential, 16 in flight):"
    )
    details.append("")
    details.append("| credential | µs/req | added |")
    details.append("| --- | ---: | ---: |")
    for cell in cells:
        added = per_request[cell] - per_request[FREE]
        details.append(f"| {cell} | {per_request[cell]:.1f} | {added:+.1f} |")
        if cell != FREE:
            results.append(
                Result(
                    NAME,
                    f"in process: CPU added by a {cell}",
                    added,
                    "µs/req",
                    note=f"{per_request[FREE]:.1f} µs/req unlimited dispatch",
                )
            )
    details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    from tests.support.redis_server import RedisServer
    from tests.support.server_process import ServerProcess

    duration = 1.0 if options.quick else 2.0
    pairs = 2 if options.quick else 4
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-limits-") as base_dir:
        redis = None
        server = None
        try:
            server = ServerProcess(data_dir=base_dir / "memory", database_url=None).start()
            free = server.create_user("bench")
            rate = _limited_pat(server, "bench", {"rate_limits": ["100000/s"]})
            quota = _limited_pat(server, "bench", {"usage": {"remaining": 10**9}})
            _compare("in-memory rate", server, free, rate, duration, pairs, results, details)
            _compare("usage quota", server, free, quota, duration, pairs, results, details)
            stop_server(server)
            server = None
            if shutil.which("redis-server") is None:
                results.append(Result(NAME, "Redis", "skipped: redis-server not installed"))
                _in_process(None, options.quick, results, details)
                return results, details
            redis = RedisServer(base_dir / "redis").start()
            server = ServerProcess(
                data_dir=base_dir / "redis-server",
                database_url=None,
                extra_args=["--redis-url", redis.url],
            ).start()
            free = server.create_user("bench")
            rate = _limited_pat(server, "bench", {"rate_limits": ["100000/s"]})
            _compare(
                "Redis rate", server, free, rate, duration, pairs, results, details,
                redis_pid=redis.process.pid,
            )  # fmt: skip
            stop_server(server)
            server = None
            _accuracy(base_dir, redis.url, results, details, 5.0 if options.quick else 10.0)
            _in_process(redis.url, options.quick, results, details)
        finally:
            if server is not None:
                stop_server(server)
            if redis is not None:
                redis.stop()
    return results, details
