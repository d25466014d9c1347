"""18. What usage counting costs: the auth/NoAuth ratio with counting on and off.

Two servers side by side (SQLite, plaintext, one process each, everything else at its
defaults), a user made on each: **off** (`SCOPEGATE_USAGE_COUNTING=0`) and **on** (the
default: every request counted in memory, written every 5 s). Benchmark 2's pair, `MyScopes`
with a PAT against `GetStatusCode` (NoAuth). Each round loads **both servers at the same
time** with the same method (half of benchmark 2's connections each), and **both servers
share one core** while the load generators have the other (`BENCH_NO_PIN=1` turns the
pinning off): the scheduler then gives the two servers equal CPU time, so their throughputs'
quotient on / off is the inverse of their CPU per request, free of the drift between rounds
and of where the scheduler puts whom (rounds one after the other swung a round's req/s by
10-30 % on two shared cores, and simultaneous rounds without pinning still differed by up to
25 % within a pair). Reports per server the ratio auth/NoAuth and the ratio of the two
ratios, on / off, which equals (MyScopes on / off) / (GetStatusCode on / off) (target >=
0.98: counting leaves the ratio unchanged within noise), and each method's throughput on /
off with the server CPU per request.

The cost is also measured where load elsewhere cannot hide it: in process, the CPU time
(`process_time`) of dispatching the same two calls through a dispatcher without and with the
usage counter, in interleaved batches, and of `observe` alone (CPU time of 100,000 calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from benchmarks import loadgen
from benchmarks.bench_throughput import (
    AUTH,
    GRPC_CONCURRENCY,
    NOAUTH,
    PYTHON_REST_CONNECTIONS,
    REST_CONNECTIONS,
)
from benchmarks.common import (
    Result,
    log,
    median,
    open_services,
    pinning_wanted,
    servers_pinned,
    sign_up,
    stop_server,
    temp_dir,
)

NAME = "18. usage counting cost"
TARGET = 0.98  # ratio auth/NoAuth with counting, over the ratio without
OFF, ON = "off", "on"
MODES = (OFF, ON)
ENV = {OFF: {"SCOPEGATE_USAGE_COUNTING": "0"}, ON: {}}


def _start(data_dir, mode: str):
    from tests.support.server_process import ServerProcess

    server = ServerProcess(data_dir=data_dir, database_url=None, extra_env=ENV[mode]).start()
    return server, server.create_user("bench")


def _rps(runs) -> float:
    seconds = sum(r.seconds for r in runs)
    return sum(r.requests for r in runs) / seconds if seconds else 0.0


def _cpu(runs) -> float | None:
    used = [r.server_cpu_seconds for r in runs]
    if not runs or None in used:
        return None
    return sum(used) / max(1, sum(r.requests for r in runs)) * 1e6


def _section(transport: str, tool: str, runs, results: list[Result], details: list[str]) -> None:
    rps = {
        (mode, method): _rps([r for r in runs if r.label == (mode, method)])
        for mode in MODES
        for method in (AUTH, NOAUTH)
    }
    ratios = {}
    for mode in MODES:
        auth, noauth = rps[mode, AUTH], rps[mode, NOAUTH]
        ratios[mode] = auth / noauth if noauth else float("nan")
        pairs = [
            a.rps / b.rps
            for a, b in zip(
                [r for r in runs if r.label == (mode, AUTH)],
                [r for r in runs if r.label == (mode, NOAUTH)],
                strict=True,
            )
            if b.rps
        ]
        results.append(
            Result(
                NAME,
                f"{transport}: ratio auth/NoAuth, counting {mode}",
                ratios[mode],
                "",
                note=f"{auth:,.0f} vs {noauth:,.0f} req/s; median of pairs {median(pairs):.3f}",
            )
        )
    kept = ratios[ON] / ratios[OFF] if ratios[OFF] else float("nan")
    # Rounds come in simultaneous pairs (off, on) of one method; a pass is one pair of each.
    on_over_off = {AUTH: [], NOAUTH: []}
    for off, on in zip(runs[::2], runs[1::2], strict=True):
        if off.rps:
            on_over_off[off.label[1]].append(on.rps / off.rps)
    per_pass = [a / n for a, n in zip(on_over_off[AUTH], on_over_off[NOAUTH], strict=False) if n]
    results.append(
        Result(
            NAME,
            f"{transport}: ratio with counting / ratio without",
            kept,
            "",
            f">= {TARGET}",
            kept >= TARGET,
            note=f"median of passes {median(per_pass):.3f}" if per_pass else "",
        )
    )
    for method in (AUTH, NOAUTH):
        base = rps[OFF, method]
        share = rps[ON, method] / base if base else float("nan")
        cpu_on = _cpu([r for r in runs if r.label == (ON, method)])
        cpu_off = _cpu([r for r in runs if r.label == (OFF, method)])
        note = (
            f"server CPU {cpu_on:.0f} vs {cpu_off:.0f} µs/request"
            if cpu_on is not None and cpu_off is not None
            else ""
        )
        results.append(Result(NAME, f"{transport}: {method} req/s, on / off", share, "", note=note))
    bad = sum(r.non_ok + r.errors for r in runs)
    if bad:
        results.append(Result(NAME, f"{transport}: non-success responses", bad, "", "0", False))
    details.append(f"**{transport}** ({tool}), rounds in the order run:")
    details.append("")
    details.append("| round | counting | method | req/s | p50 ms | p99 ms | server CPU µs/req |")
    details.append("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for i, run in enumerate(runs):
        used = run.server_cpu_us_per_request
        mode, method = run.label
        details.append(
            f"| {i + 1} | {mode} | {method} | {run.rps:,.0f} | {run.p50_us / 1000:.1f} | "
            f"{run.p99_us / 1000:.1f} | {'' if used is None else f'{used:.0f}'} |"
        )
    details.append("")


def _in_process(quick: bool, results: list[Result], details: list[str]) -> None:
    from clarifai_grpc.grpc.api import service_pb2

    from scopegate.dispatch import Call, Outcome
    from scopegate.server.serve import build_dispatcher
    from scopegate.services.usage import UsageCounter

    batch, rounds = (2_000, 4) if quick else (5_000, 8)
    with temp_dir("sg-bench-usage-") as where:
        services = open_services(where)
        pat = sign_up(services, "bench")
        dispatcher = build_dispatcher(services)
        counter = UsageCounter(services.engine)
        configs = {OFF: [], ON: [counter]}
        catalog = services.catalog
        calls = {
            AUTH: (catalog.method("MyScopes"), service_pb2.MyScopesRequest),
            NOAUTH: (
                catalog.method("GetStatusCode"),
                lambda: service_pb2.GetStatusCodeRequest(status_code_id="10000"),
            ),
        }
        header = f"Key {pat}"
        last: dict = {}

        class Keep:
            def observe(self, outcome: Outcome) -> None:
                last["outcome"] = outcome

        async def measure(mode: str, method: str, count: int) -> float:
            dispatcher.observers[:] = configs[mode]
            spec, make = calls[method]
            started = time.process_time()
            for _ in range(count):
                await dispatcher.dispatch(Call(spec, make(), header, None, "127.0.0.1"))
            return time.process_time() - started

        async def all_rounds() -> dict[tuple[str, str], float]:
            cells = [(mode, method) for mode in MODES for method in (AUTH, NOAUTH)]
            for cell in cells:
                await measure(*cell, 500)  # warm-up
            spent = dict.fromkeys(cells, 0.0)
            for i in range(rounds):
                for cell in cells if i % 2 == 0 else cells[::-1]:
                    spent[cell] += await measure(*cell, batch)
                counter.flush()  # as the server does, every few seconds
            # One outcome of each method, observed alone in a tight loop.
            dispatcher.observers[:] = [Keep()]
            alone = {}
            for method, (spec, make) in calls.items():
                await dispatcher.dispatch(Call(spec, make(), header, None, "127.0.0.1"))
                outcome = last["outcome"]
                started = time.process_time()
                for _ in range(100_000):
                    counter.observe(outcome)
                alone[method] = (time.process_time() - started) / 100_000 * 1e9
            counter.flush()
            per = {cell: seconds / (batch * rounds) * 1e6 for cell, seconds in spent.items()}
            return {**per, **{("observe", m): ns for m, ns in alone.items()}}

        measured = asyncio.run(all_rounds())
        services.engine.dispose()
    details.append(
        f"**In process** (dispatch only, no transport; CPU time over {rounds} interleaved "
        f"batches of {batch:,} calls per cell, the counter written after each round):"
    )
    details.append("")
    details.append("| method | off µs/req | on µs/req | `observe` alone ns |")
    details.append("| --- | ---: | ---: | ---: |")
    for method in (AUTH, NOAUTH):
        off, on = measured[OFF, method], measured[ON, method]
        alone = measured["observe", method]
        details.append(f"| {method} | {off:.1f} | {on:.1f} | {alone:.0f} |")
        results.append(
            Result(
                NAME,
                f"in process: {method}, CPU added by counting",
                on - off,
                "µs/req",
                note=f"{off:.1f} µs/req dispatch alone; observe alone {alone:.0f} ns",
            )
        )
    details.append("")


def _passes(passes: int) -> list[tuple[str, tuple[str, str]]]:
    """Per pass, each method once, with both servers loaded at the same time; the order of
    the methods, and which server's load starts first, alternate."""
    order = []
    for i in range(passes):
        methods = (AUTH, NOAUTH) if i % 2 == 0 else (NOAUTH, AUTH)
        for j, method in enumerate(methods):
            order.append((method, MODES if (i + j) % 2 == 0 else MODES[::-1]))
    return order


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.5 if options.quick else 3.0
    passes = 2 if options.quick else 6
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-usage-off-") as off_dir, temp_dir("sg-bench-usage-on-") as on_dir:
        servers = {}
        try:
            for mode, where in zip(MODES, (off_dir, on_dir), strict=True):
                servers[mode] = _start(where, mode)
            # Both servers share one core: the scheduler gives them equal CPU time, so their
            # throughputs' quotient is that of their CPU per request.
            pids = [server.process.pid for server, _ in servers.values()]
            pinned = servers_pinned(pids) if pinning_wanted() else contextlib.nullcontext("")
            use_wrk = loadgen.wrk_path() is not None
            connections = (REST_CONNECTIONS if use_wrk else PYTHON_REST_CONNECTIONS) // 2
            concurrency = GRPC_CONCURRENCY // 2
            paths = {AUTH: "/v2/myscopes", NOAUTH: "/v2/status_codes/10000"}

            def rest(mode: str, method: str, seconds: float):
                server, pat = servers[mode]
                started = loadgen.start_http(
                    server.http_url + paths[method],
                    duration=seconds,
                    connections=connections,
                    headers={"authorization": "Key " + pat},
                    server_pid=server.process.pid,
                )
                return lambda: started.wait(seconds + 30)

            def grpc(mode: str, method: str, seconds: float):
                server, pat = servers[mode]
                started = loadgen.start_grpc(
                    server.grpc_address,
                    [method],
                    duration=seconds,
                    concurrency=concurrency,
                    secret=pat,
                    server_pid=server.process.pid,
                )
                return lambda: started.wait_all(seconds + 60)[0]

            def together(start, method: str, modes: tuple[str, ...], seconds: float):
                waits = {mode: start(mode, method, seconds) for mode in modes}
                rounds = []
                for mode in MODES:
                    result = waits[mode]()
                    result.label = (mode, method)
                    rounds.append(result)
                return rounds

            with pinned as note:
                if note:
                    details += [note, ""]
                for transport, start, tool in (
                    ("REST", rest, f"{connections} keep-alive connections per server"),
                    ("gRPC", grpc, f"grpc.aio client, {concurrency} concurrent calls per server"),
                ):
                    log(f"{NAME}: {transport}, warm-up then {passes} passes, both servers at once")
                    for method in (AUTH, NOAUTH):
                        together(start, method, MODES, 1.0)
                    runs = []
                    for method, modes in _passes(passes):
                        runs += together(start, method, modes, duration)
                    _section(transport, f"{runs[0].tool}, {tool}", runs, results, details)
        finally:
            for server, _ in servers.values():
                stop_server(server)
    log(f"{NAME}: in process, what counting adds to a dispatch")
    _in_process(options.quick, results, details)
    return results, details
