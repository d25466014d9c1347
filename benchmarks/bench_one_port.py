"""7. What one port costs: `serve --port` against the two-port server, REST and gRPC.

Two servers run side by side (SQLite, plaintext), each with a user made by its CLI: one
with --grpc-port/--http-port, one with --port, where each gRPC connection is piped in
process to a loopback gRPC listener and each HTTP connection passes the preface check once.
`MyScopes` with a PAT, in rounds alternating the two servers (A B B A ...), so drift hits
both alike; the load generators are benchmark 2's (keep-alive HTTP connections; one
`grpc.aio` client process per round, 16 calls in flight on one channel). Reports req/s and
server CPU per request of each, and the ratio one port / two ports (target >= 0.9).
"""

from __future__ import annotations

from benchmarks import loadgen
from benchmarks.bench_throughput import GRPC_CONCURRENCY, PYTHON_REST_CONNECTIONS, REST_CONNECTIONS
from benchmarks.common import Result, log, median, stop_server, temp_dir

NAME = "7. one port vs two"
TARGET_RATIO = 0.9
METHOD = "MyScopes"
TWO, ONE = "two ports", "one port"


def _order(pairs: int) -> list[str]:
    order = []
    for i in range(pairs):
        order += [TWO, ONE] if i % 2 == 0 else [ONE, TWO]
    return order


def _start(data_dir, one_port: bool):
    from tests.support.server_process import ServerProcess

    server = ServerProcess(data_dir=data_dir, database_url=None, one_port=one_port).start()
    return server, server.create_user("bench")


def _section(transport: str, tool: str, runs, results: list[Result], details: list[str]) -> None:
    by_mode = {mode: [r for r in runs if r.label == mode] for mode in (TWO, ONE)}
    rps = {}
    cpu = {}
    for mode, rounds in by_mode.items():
        seconds = sum(r.seconds for r in rounds)
        rps[mode] = sum(r.requests for r in rounds) / seconds if seconds else 0.0
        used = [r.server_cpu_seconds for r in rounds]
        cpu[mode] = (
            sum(used) / max(1, sum(r.requests for r in rounds)) * 1e6
            if rounds and None not in used
            else None
        )
        results.append(Result(NAME, f"{transport}: {METHOD} (PAT), {mode}", rps[mode], "req/s"))
    ratio = rps[ONE] / rps[TWO] if rps[TWO] else float("nan")
    pairs = [a.rps / b.rps for a, b in zip(by_mode[ONE], by_mode[TWO], strict=True) if b.rps]
    note = f"{tool}; median of pairs {median(pairs):.3f}, range {min(pairs):.3f}..{max(pairs):.3f}"
    ok = ratio >= TARGET_RATIO
    results.append(
        Result(
            NAME, f"{transport}: ratio one port / two", ratio, "", f">= {TARGET_RATIO}", ok, note
        )
    )
    if cpu[ONE] is not None and cpu[TWO] is not None:
        results.append(
            Result(
                NAME,
                f"{transport}: server CPU per request, two ports / one port",
                f"{cpu[TWO]:.0f} / {cpu[ONE]:.0f}",
                "µs",
                note=f"two/one {cpu[TWO] / cpu[ONE]:.3f}: the ratio a CPU-bound server would show",
            )
        )
    bad = sum(r.non_ok + r.errors for r in runs)
    if bad:
        results.append(Result(NAME, f"{transport}: non-success responses", bad, "", "0", False))
    details.append(f"**{transport}** ({tool}), rounds in the order run:")
    details.append("")
    details.append("| round | server | req/s | p50 ms | p99 ms | server CPU µs/req |")
    details.append("| ---: | --- | ---: | ---: | ---: | ---: |")
    for i, run in enumerate(runs):
        used = run.server_cpu_us_per_request
        details.append(
            f"| {i + 1} | {run.label} | {run.rps:,.0f} | {run.p50_us / 1000:.1f} | "
            f"{run.p99_us / 1000:.1f} | {'' if used is None else f'{used:.0f}'} |"
        )
    details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.0 if options.quick else 2.0
    pairs = 2 if options.quick else 5
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-two-") as two_dir, temp_dir("sg-bench-one-") as one_dir:
        servers = {}
        try:
            servers[TWO] = _start(two_dir, one_port=False)
            servers[ONE] = _start(one_dir, one_port=True)
            use_wrk = loadgen.wrk_path() is not None
            connections = REST_CONNECTIONS if use_wrk else PYTHON_REST_CONNECTIONS

            def rest(mode: str, seconds: float = duration):
                server, pat = servers[mode]
                result = loadgen.start_http(
                    f"{server.http_url}/v2/myscopes",
                    duration=seconds,
                    connections=connections,
                    headers={"authorization": "Key " + pat},
                    server_pid=server.process.pid,
                ).wait(seconds + 30)
                result.label = mode
                return result

            def grpc(mode: str, seconds: float = duration):
                server, pat = servers[mode]
                (result,) = loadgen.start_grpc(
                    server.grpc_address,
                    [METHOD],
                    duration=seconds,
                    concurrency=GRPC_CONCURRENCY,
                    secret=pat,
                    server_pid=server.process.pid,
                ).wait_all(seconds + 60)
                result.label = mode
                return result

            log(f"{NAME}: REST, warm-up then {pairs} pairs of {duration}s rounds")
            for mode in (TWO, ONE):
                rest(mode, 1.0)
            runs = [rest(mode) for mode in _order(pairs)]
            tool = f"{runs[0].tool}, {connections} keep-alive connections"
            _section("REST", tool, runs, results, details)

            log(f"{NAME}: gRPC, warm-up then {pairs} pairs of {duration}s rounds")
            for mode in (TWO, ONE):
                grpc(mode, 1.0)
            runs = [grpc(mode) for mode in _order(pairs)]
            tool = f"grpc.aio client, {GRPC_CONCURRENCY} concurrent calls on one channel"
            _section("gRPC", tool, runs, results, details)
        finally:
            for server, _ in servers.values():
                stop_server(server)
    return results, details
