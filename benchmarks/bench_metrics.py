"""14. What metrics and the access log cost: the auth/NoAuth ratio with them on and off.

Three servers side by side (SQLite, plaintext, one process each), a user made on each:
- **off**: `SCOPEGATE_METRICS=off`, `SCOPEGATE_LOG_LEVEL=warning` (no metrics, no access log);
- **metrics**: metrics on (the default), access log off (`SCOPEGATE_LOG_LEVEL=warning`);
- **metrics+log**: the defaults: metrics on and one JSON access line per request (to a file).
Benchmark 2's pair, `MyScopes` with a PAT against `GetStatusCode` (NoAuth), in rounds that
visit every server and both methods in an order rotated each pass (drift hits all alike),
with benchmark 2's load generators. Reports per server the ratio auth/NoAuth (target >= 0.9
with metrics on) and each method's throughput relative to the server with everything off.

Throughput on a shared 2-core machine moves with whatever else runs, so the cost is also
measured where load elsewhere cannot hide it: in process, the CPU time (`process_time`) of
dispatching the same two calls through a dispatcher with no observer, with the metrics, and
with the metrics and the access log (JSON lines to a file), in interleaved batches; the
difference is what observing adds to each request, to set against the server CPU a REST
request costs (the `off` server's rounds above).
"""

from __future__ import annotations

import asyncio
import logging
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
    sign_up,
    stop_server,
    temp_dir,
)

NAME = "14. metrics and access log cost"
TARGET_RATIO = 0.9
OFF, METRICS, ALL = "off", "metrics", "metrics+log"
MODES = (OFF, METRICS, ALL)
ENV = {
    OFF: {"SCOPEGATE_METRICS": "off", "SCOPEGATE_LOG_LEVEL": "warning"},
    METRICS: {"SCOPEGATE_LOG_LEVEL": "warning"},
    ALL: {"SCOPEGATE_LOG_FORMAT": "json"},
}


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
    rps = {}
    for mode in MODES:
        for method in (AUTH, NOAUTH):
            rps[mode, method] = _rps([r for r in runs if r.label == (mode, method)])
    for mode in MODES:
        auth, noauth = rps[mode, AUTH], rps[mode, NOAUTH]
        ratio = auth / noauth if noauth else float("nan")
        pairs = [
            a.rps / b.rps
            for a, b in zip(
                [r for r in runs if r.label == (mode, AUTH)],
                [r for r in runs if r.label == (mode, NOAUTH)],
                strict=True,
            )
            if b.rps
        ]
        cpu_auth = [r.server_cpu_us_per_request for r in runs if r.label == (mode, AUTH)]
        cpu_noauth = [r.server_cpu_us_per_request for r in runs if r.label == (mode, NOAUTH)]
        if None not in cpu_auth + cpu_noauth and cpu_auth and cpu_noauth:
            # What a CPU-bound server would show; steadier than req/s on a shared machine.
            cpu_ratio = median(cpu_noauth) / median(cpu_auth)
            results.append(
                Result(
                    NAME,
                    f"{transport}: CPU ratio NoAuth/auth (medians of rounds), {mode}",
                    cpu_ratio,
                    note=f"{median(cpu_auth):.0f} vs {median(cpu_noauth):.0f} µs/request",
                )
            )
        target = f">= {TARGET_RATIO}" if mode != OFF else ""
        results.append(
            Result(
                NAME,
                f"{transport}: ratio auth/NoAuth, {mode}",
                ratio,
                "",
                target,
                ratio >= TARGET_RATIO if mode != OFF else None,
                f"{auth:,.0f} vs {noauth:,.0f} req/s; median of pairs {median(pairs):.3f}",
            )
        )
    for mode in (METRICS, ALL):
        for method in (AUTH, NOAUTH):
            base = rps[OFF, method]
            share = rps[mode, method] / base if base else float("nan")
            cpu_on = _cpu([r for r in runs if r.label == (mode, method)])
            cpu_off = _cpu([r for r in runs if r.label == (OFF, method)])
            note = (
                f"server CPU {cpu_on:.0f} vs {cpu_off:.0f} µs/request"
                if cpu_on is not None and cpu_off is not None
                else ""
            )
            results.append(
                Result(NAME, f"{transport}: {method} req/s, {mode} / off", share, "", note=note)
            )
    bad = sum(r.non_ok + r.errors for r in runs)
    if bad:
        results.append(Result(NAME, f"{transport}: non-success responses", bad, "", "0", False))
    details.append(f"**{transport}** ({tool}), rounds in the order run:")
    details.append("")
    details.append("| round | server | method | req/s | p50 ms | p99 ms | server CPU µs/req |")
    details.append("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for i, run in enumerate(runs):
        used = run.server_cpu_us_per_request
        mode, method = run.label
        details.append(
            f"| {i + 1} | {mode} | {method} | {run.rps:,.0f} | {run.p50_us / 1000:.1f} | "
            f"{run.p99_us / 1000:.1f} | {'' if used is None else f'{used:.0f}'} |"
        )
    details.append("")


def _order(passes: int) -> list[tuple[str, str]]:
    cells = [(mode, method) for mode in MODES for method in (AUTH, NOAUTH)]
    order = []
    for i in range(passes):
        shift = i % len(cells)
        rotated = cells[shift:] + cells[:shift]
        order += rotated if i % 2 == 0 else rotated[::-1]
    return order


def _observing_cost(quick: bool, results: list[Result], details: list[str]) -> None:
    from clarifai_grpc.grpc.api import service_pb2

    from scopegate.dispatch import Call
    from scopegate.observability.access_log import AccessLog
    from scopegate.observability.logs import JsonFormatter
    from scopegate.observability.metrics import Metrics
    from scopegate.request_ids import RequestIdFilter
    from scopegate.server.serve import build_dispatcher

    batch, rounds = (2_000, 4) if quick else (5_000, 8)
    with temp_dir("sg-bench-observe-") as where:
        services = open_services(where)
        pat = sign_up(services, "bench")
        dispatcher = build_dispatcher(services)
        metrics = Metrics()
        metrics.watch_cache("decisions", dispatcher.decisions, lambda: dispatcher.decisions.misses)
        # As logs.configure sets them for the server.
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        access_logger = logging.getLogger("bench.access")
        access_logger.propagate = False
        access_logger.setLevel(logging.INFO)
        with (where / "access.log").open("w") as sink:
            handler = logging.StreamHandler(sink)
            handler.setFormatter(JsonFormatter())
            handler.addFilter(RequestIdFilter())
            access_logger.addHandler(handler)
            configs = {OFF: [], METRICS: [metrics], ALL: [metrics, AccessLog(access_logger)]}
            catalog = services.catalog
            calls = {
                AUTH: (catalog.method("MyScopes"), service_pb2.MyScopesRequest),
                NOAUTH: (
                    catalog.method("GetStatusCode"),
                    lambda: service_pb2.GetStatusCodeRequest(status_code_id="10000"),
                ),
            }
            header = f"Key {pat}"

            async def measure(mode: str, method: str, count: int) -> float:
                dispatcher.observers[:] = configs[mode]
                spec, make = calls[method]
                started = time.process_time()
                for _ in range(count):
                    call = Call(spec, make(), header, None, "127.0.0.1", transport="rest")
                    await dispatcher.dispatch(call)
                return time.process_time() - started

            async def all_rounds() -> dict[tuple[str, str], float]:
                cells = [(mode, method) for mode in MODES for method in (AUTH, NOAUTH)]
                for cell in cells:
                    await measure(*cell, 500)  # warm-up: caches, label children
                spent = dict.fromkeys(cells, 0.0)
                for i in range(rounds):
                    for cell in cells if i % 2 == 0 else cells[::-1]:
                        spent[cell] += await measure(*cell, batch)
                return {cell: seconds / (batch * rounds) * 1e6 for cell, seconds in spent.items()}

            per_request = asyncio.run(all_rounds())
            access_logger.removeHandler(handler)
        services.engine.dispose()
    details.append(
        f"**In process** (dispatch only, no transport; CPU time over {rounds} interleaved "
        f"batches of {batch:,} calls per cell):"
    )
    details.append("")
    details.append("| method | off µs/req | metrics µs/req | metrics+log µs/req |")
    details.append("| --- | ---: | ---: | ---: |")
    for method in (AUTH, NOAUTH):
        cells = [per_request[mode, method] for mode in MODES]
        details.append(f"| {method} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
        for mode in (METRICS, ALL):
            added = per_request[mode, method] - per_request[OFF, method]
            results.append(
                Result(
                    NAME,
                    f"in process: {method}, CPU added by {mode}",
                    added,
                    "µs/req",
                    note=f"{per_request[OFF, method]:.1f} µs/req dispatch alone",
                )
            )
    details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.0 if options.quick else 2.0
    passes = 2 if options.quick else 4
    results: list[Result] = []
    details: list[str] = []
    with (
        temp_dir("sg-bench-off-") as off_dir,
        temp_dir("sg-bench-metrics-") as metrics_dir,
        temp_dir("sg-bench-all-") as all_dir,
    ):
        servers = {}
        try:
            for mode, where in zip(MODES, (off_dir, metrics_dir, all_dir), strict=True):
                servers[mode] = _start(where, mode)
            use_wrk = loadgen.wrk_path() is not None
            connections = REST_CONNECTIONS if use_wrk else PYTHON_REST_CONNECTIONS
            paths = {AUTH: "/v2/myscopes", NOAUTH: "/v2/status_codes/10000"}

            def rest(cell: tuple[str, str], seconds: float = duration):
                server, pat = servers[cell[0]]
                result = loadgen.start_http(
                    server.http_url + paths[cell[1]],
                    duration=seconds,
                    connections=connections,
                    headers={"authorization": "Key " + pat},
                    server_pid=server.process.pid,
                ).wait(seconds + 30)
                result.label = cell
                return result

            def grpc(cell: tuple[str, str], seconds: float = duration):
                server, pat = servers[cell[0]]
                (result,) = loadgen.start_grpc(
                    server.grpc_address,
                    [cell[1]],
                    duration=seconds,
                    concurrency=GRPC_CONCURRENCY,
                    secret=pat,
                    server_pid=server.process.pid,
                ).wait_all(seconds + 60)
                result.label = cell
                return result

            log(f"{NAME}: REST, warm-up then {passes} passes over 3 servers x 2 methods")
            for cell in _order(1):
                rest(cell, 0.5)
            runs = [rest(cell) for cell in _order(passes)]
            _section(
                "REST",
                f"{runs[0].tool}, {connections} keep-alive connections",
                runs,
                results,
                details,
            )

            log(f"{NAME}: gRPC, warm-up then {passes} passes")
            for cell in _order(1):
                grpc(cell, 0.5)
            runs = [grpc(cell) for cell in _order(passes)]
            tool = f"grpc.aio client, {GRPC_CONCURRENCY} concurrent calls on one channel"
            _section("gRPC", tool, runs, results, details)
        finally:
            for server, _ in servers.values():
                stop_server(server)
    log(f"{NAME}: in process, what observing adds to a dispatch")
    try:
        _observing_cost(options.quick, results, details)
    except Exception as exc:  # keep the servers' figures
        results.append(Result(NAME, "in process: error", type(exc).__name__, "", "", False))
    return results, details
