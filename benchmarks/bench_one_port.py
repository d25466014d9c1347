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

import contextlib
import os

from benchmarks import loadgen
from benchmarks.bench_throughput import GRPC_CONCURRENCY, PYTHON_REST_CONNECTIONS, REST_CONNECTIONS
from benchmarks.common import (
    Result,
    log,
    median,
    pinning_wanted,
    process_cpu_seconds,
    servers_pinned,
    stop_server,
    temp_dir,
)

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


def _children_cpu(pid: int) -> float:
    """CPU seconds of a server's child processes so far (the one-port relay process)."""
    total = 0.0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                for child in children.read().split():
                    total += process_cpu_seconds(int(child)) or 0.0
    return total


def _section(
    transport: str, tool: str, runs, results: list[Result], details: list[str], paired=False
) -> None:
    by_mode = {mode: [r for r in runs if r.label == mode] for mode in (TWO, ONE)}
    rps = {}
    cpu = {}
    for mode, rounds in by_mode.items():
        seconds = sum(r.seconds for r in rounds)
        rps[mode] = sum(r.requests for r in rounds) / seconds if seconds else 0.0
        used = [r.server_cpu_seconds for r in rounds]
        relay = sum((r.helper_cpu_us or 0.0) * r.requests for r in rounds) / 1e6
        cpu[mode] = (
            (sum(used) + relay) / max(1, sum(r.requests for r in rounds)) * 1e6
            if rounds and None not in used
            else None
        )
        results.append(Result(NAME, f"{transport}: {METHOD} (PAT), {mode}", rps[mode], "req/s"))
    ratio = rps[ONE] / rps[TWO] if rps[TWO] else float("nan")
    pairs = [a.rps / b.rps for a, b in zip(by_mode[ONE], by_mode[TWO], strict=True) if b.rps]
    note = f"{tool}; median of pairs {median(pairs):.3f}, range {min(pairs):.3f}..{max(pairs):.3f}"
    by_cpu = cpu[TWO] / cpu[ONE] if cpu[ONE] and cpu[TWO] else float("nan")
    if paired:
        # Sharing one core, the one-port server and its relay process are two of the three
        # processes the scheduler shares it among: more than half of it. The cost is their
        # CPU per request together, against the two-port server's.
        note += "; the one-port server and its relay get more than half of the shared core"
        results.append(Result(NAME, f"{transport}: req/s one port / two", ratio, "", note=note))
        results.append(
            Result(
                NAME,
                f"{transport}: ratio one port / two, by CPU per request (relay included)",
                by_cpu,
                "",
                f">= {TARGET_RATIO}",
                by_cpu >= TARGET_RATIO,
                f"{cpu[TWO]:.0f} µs (two ports) / {cpu[ONE]:.0f} µs (one port, relay included)",
            )
        )
    else:
        results.append(
            Result(
                NAME,
                f"{transport}: ratio one port / two",
                ratio,
                "",
                f">= {TARGET_RATIO}",
                ratio >= TARGET_RATIO,
                note,
            )
        )
        if cpu[ONE] is not None and cpu[TWO] is not None:
            results.append(
                Result(
                    NAME,
                    f"{transport}: server CPU per request, two ports / one port",
                    f"{cpu[TWO]:.0f} / {cpu[ONE]:.0f}",
                    "µs",
                    note=f"two/one {by_cpu:.3f}: the ratio a CPU-bound server would show "
                    "(the one-port relay process's CPU included)",
                )
            )
    bad = sum(r.non_ok + r.errors for r in runs)
    if bad:
        results.append(Result(NAME, f"{transport}: non-success responses", bad, "", "0", False))
    details.append(f"**{transport}** ({tool}), rounds in the order run:")
    details.append("")
    details.append(
        "| round | server | req/s | p50 ms | p99 ms | server CPU µs/req | relay CPU µs/req |"
    )
    details.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for i, run in enumerate(runs):
        used, relay = run.server_cpu_us_per_request, run.helper_cpu_us
        details.append(
            f"| {i + 1} | {run.label} | {run.rps:,.0f} | {run.p50_us / 1000:.1f} | "
            f"{run.p99_us / 1000:.1f} | {'' if used is None else f'{used:.0f}'} | "
            f"{'' if relay is None else f'{relay:.0f}'} |"
        )
    details.append("")


def _paired(servers, rest, grpc, pairs, duration, connections, results, details) -> None:
    """Both servers on one core (the one-port server's relay process too: it is started
    after, and inherits the core), the load generators on the other, both servers loaded at
    once in every round: their throughputs are then in the inverse ratio of all the CPU a
    request costs each, the relay's included."""
    pids = [server.process.pid for server, _ in servers.values()]
    with servers_pinned(pids) as note:
        details += [note, ""]
        for transport, go, tool in (
            ("REST", rest, f"{connections} keep-alive connections per server"),
            ("gRPC", grpc, f"grpc.aio client per server, {GRPC_CONCURRENCY} calls in flight"),
        ):
            log(f"{NAME}: {transport}, warm-up then {2 * pairs} rounds, both servers at once")
            _together(go, 1.0)
            runs = []
            for _ in range(2 * pairs):
                runs += _together(go, duration)
            tool = f"{runs[0].tool}, {tool}, both at once"
            _section(transport, tool, runs, results, details, paired=True)


def _together(go, seconds: float) -> list:
    """One round of each server at the same time (`go(mode, seconds, start_only=True)`)."""
    waits = {mode: go(mode, seconds, start_only=True) for mode in (TWO, ONE)}
    return [waits[mode]() for mode in (TWO, ONE)]


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

            def labelled(mode: str, wait):
                """The round's result, labelled, with the CPU per request of the server's
                child processes (the one-port relay) in `helper_cpu_us`."""
                pid = servers[mode][0].process.pid
                before = _children_cpu(pid)

                def result():
                    got = wait()
                    got.label = mode
                    spent = _children_cpu(pid) - before
                    got.helper_cpu_us = spent / got.requests * 1e6 if got.requests else None
                    return got

                return result

            def rest(mode: str, seconds: float = duration, start_only: bool = False):
                server, pat = servers[mode]
                started = loadgen.start_http_keyed(
                    server, "/v2/myscopes", pat, duration=seconds, connections=connections
                )
                wait = labelled(mode, lambda: started.wait(seconds + 30))
                return wait if start_only else wait()

            def grpc(mode: str, seconds: float = duration, start_only: bool = False):
                server, pat = servers[mode]
                started = loadgen.start_grpc(
                    server.grpc_address,
                    [METHOD],
                    duration=seconds,
                    concurrency=GRPC_CONCURRENCY,
                    secret=pat,
                    server_pid=server.process.pid,
                )
                wait = labelled(mode, lambda: started.wait_all(seconds + 60)[0])
                return wait if start_only else wait()

            if pinning_wanted():
                _paired(servers, rest, grpc, pairs, duration, connections, results, details)
                return results, details
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
