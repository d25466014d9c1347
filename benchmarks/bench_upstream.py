"""11. What forwarding upstream costs: a forwarded call against the same call made directly
to the upstream, gRPC and REST, at 1 and 64 calls in flight (issue 15).

The test upstream (tests/support/upstream.py, a grpc.aio V2 server, not recording) runs in
a process of its own; one scopegate (SQLite, plaintext, one process) forwards to it with
`--upstream`. The call is `GetWorkflow` naming the user's app with its PAT: authenticated,
authorized (cached), forwarded with the identity metadata, the upstream's answer parsed and
passed on. Direct: the same request with the same metadata to the upstream's gRPC port (the
upstream speaks gRPC only, so REST's direct figure is gRPC's). Load generators are benchmark
2's (one grpc.aio client process per round, N concurrent calls on one channel; wrk with N
keep-alive connections). Rounds alternate direct and forwarded (A B B A ...), with a local
call (`MyScopes`, same PAT and app, answered by scopegate itself) between them for scale.
Over gRPC a bare grpc.aio proxy (bytes in, the same call upstream, bytes out, nothing
else) runs too: the floor of any Python gRPC proxy. Reports req/s, the ratio forwarded /
direct (target >= 0.6), the added p50 and p99 (target: added p50 <= 1 ms at one in
flight), forwarded / local and forwarded / bare proxy.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks import loadgen
from benchmarks.common import REPO_ROOT, Result, log, median, stop_server, temp_dir

NAME = "11. forwarding upstream"
TARGET_RATIO = 0.6
TARGET_ADDED_P50_MS = 1.0
IN_FLIGHT = (1, 64)
APP = "bench-app"
ROUND = f"GetWorkflow@bench/{APP}"
LOCAL_ROUND = f"MyScopes@bench/{APP}"
DIRECT, FORWARDED, LOCAL, BARE = "direct", "forwarded", "local", "bare grpc.aio proxy"


def _order(pairs: int, bare: bool = False) -> list[str]:
    """Direct and forwarded alternating (A B B A ...), a local call between them (and for
    gRPC the bare proxy)."""
    middle = [LOCAL, BARE] if bare else [LOCAL]
    order = []
    for i in range(pairs):
        order += [DIRECT, *middle, FORWARDED] if i % 2 == 0 else [FORWARDED, *middle, DIRECT]
    return order


async def _bare_proxy(port: int, upstream: str) -> None:
    """A grpc.aio server passing GetWorkflow's bytes to `upstream` and back, nothing else:
    what any Python gRPC proxy pays (server and client calls in one process)."""
    import grpc

    server = grpc.aio.server()
    channel = grpc.aio.insecure_channel(upstream)
    call = channel.unary_unary("/clarifai.api.V2/GetWorkflow")

    async def forward(request: bytes, context) -> bytes:
        return await call(request, timeout=30)

    handler = grpc.unary_unary_rpc_method_handler(forward)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("clarifai.api.V2", {"GetWorkflow": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("listening", flush=True)
    await server.wait_for_termination()


def _start_bare_proxy(upstream: str) -> tuple[subprocess.Popen, str]:
    from tests.support.server_process import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_upstream", str(port), upstream],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("listening"):
        process.kill()
        raise RuntimeError(f"the bare proxy did not start: {line!r}")
    return process, f"127.0.0.1:{port}"


def _start_upstream() -> tuple[subprocess.Popen, str]:
    from tests.support.server_process import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.upstream", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("listening"):
        process.kill()
        raise RuntimeError(f"the test upstream did not start: {line!r}")
    return process, f"127.0.0.1:{port}"


def _grpc(address: str, pid: int, n: int, duration: float, pat: str, label: str):
    call = LOCAL_ROUND if label == LOCAL else ROUND
    result = loadgen.start_grpc(
        address, [call], duration=duration, concurrency=n, secret=pat, server_pid=pid
    ).wait(duration + 60)
    result.label = label
    return result


def _rest(gate, n: int, duration: float, pat: str, label: str = FORWARDED):
    path = "myscopes" if label == LOCAL else "workflows/general"
    url = f"{gate.http_url}/v2/users/bench/apps/{APP}/{path}"
    result = loadgen.start_http(
        url,
        duration=duration,
        connections=n,
        headers={"authorization": f"Key {pat}"},
        server_pid=gate.process.pid,
    ).wait(duration + 60)
    result.label = label
    return result


def _load() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return handle.read().split()[0]
    except OSError:
        return "?"


def _rate(runs) -> float:
    seconds = sum(r.seconds for r in runs)
    return sum(r.requests for r in runs) / seconds if seconds else 0.0


def _section(transport: str, n: int, runs, tool: str, results, details) -> None:
    direct = [r for r in runs if r.label == DIRECT]
    forwarded = [r for r in runs if r.label == FORWARDED]
    local = [r for r in runs if r.label == LOCAL]
    rps_direct, rps_forwarded = _rate(direct), _rate(forwarded)
    ratio = rps_forwarded / rps_direct if rps_direct else float("nan")
    p50 = {
        k: median([r.p50_us for r in runs]) / 1000 for k, runs in (("d", direct), ("f", forwarded))
    }
    p99 = {
        k: median([r.p99_us for r in runs]) / 1000 for k, runs in (("d", direct), ("f", forwarded))
    }
    where = f"{transport}, {n} in flight"
    results.append(
        Result(
            NAME,
            f"{where}: direct / forwarded",
            f"{rps_direct:,.0f} / {rps_forwarded:,.0f}",
            "req/s",
        )
    )
    results.append(
        Result(
            NAME,
            f"{where}: ratio forwarded / direct",
            ratio,
            "",
            f">= {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
            tool,
        )
    )
    added = p50["f"] - p50["d"]
    target = f"<= {TARGET_ADDED_P50_MS}" if n == 1 else ""
    results.append(
        Result(
            NAME,
            f"{where}: added p50",
            added,
            "ms",
            target,
            added <= TARGET_ADDED_P50_MS if n == 1 else None,
            f"p50 direct {p50['d']:.2f}, forwarded {p50['f']:.2f} ms",
        )
    )
    results.append(
        Result(
            NAME,
            f"{where}: added p99",
            p99["f"] - p99["d"],
            "ms",
            note=f"p99 direct {p99['d']:.2f}, forwarded {p99['f']:.2f} ms",
        )
    )
    bare = [r for r in runs if r.label == BARE]
    if bare:
        rps_bare = _rate(bare)
        p50_bare = median([r.p50_us for r in bare]) / 1000
        results.append(
            Result(
                NAME,
                f"{where}: forwarded / a bare grpc.aio proxy",
                rps_forwarded / rps_bare if rps_bare else float("nan"),
                "",
                note=f"bare proxy {rps_bare:,.0f} req/s, p50 {p50_bare:.2f} ms",
            )
        )
    rps_local = _rate(local)
    p50_local = median([r.p50_us for r in local]) / 1000
    results.append(
        Result(
            NAME,
            f"{where}: forwarded / a local call (MyScopes) on the same scopegate",
            rps_forwarded / rps_local if rps_local else float("nan"),
            "",
            note=f"local {rps_local:,.0f} req/s, p50 {p50_local:.2f} ms",
        )
    )
    bad = sum(r.non_ok + r.errors for r in runs)
    if bad:
        results.append(Result(NAME, f"{where}: non-success answers", bad, "", "0", False))
    details.append(f"**{where}** ({tool}), rounds in the order run:")
    details.append("")
    details.append("| round | call | req/s | p50 ms | p99 ms | scopegate CPU µs/req |")
    details.append("| ---: | --- | ---: | ---: | ---: | ---: |")
    for i, run in enumerate(runs):
        used = run.server_cpu_us_per_request if run.label in (FORWARDED, LOCAL) else None
        details.append(
            f"| {i + 1} | {run.label} | {run.rps:,.0f} | {run.p50_us / 1000:.2f} | "
            f"{run.p99_us / 1000:.2f} | {'' if used is None else f'{used:.0f}'} |"
        )
    details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    from tests.support.server_process import ServerProcess

    duration = 1.0 if options.quick else 3.0
    pairs = 1 if options.quick else 2
    results: list[Result] = []
    details: list[str] = [
        "The machine's 2 cores are shared by the load generator, scopegate, the test "
        "upstream and, while this ran, other work on the machine: figures are indicative.",
        "",
    ]
    load_before = _load()
    upstream, address = _start_upstream()
    proxy, proxy_address = _start_bare_proxy(address)
    try:
        with temp_dir("sg-bench-upstream-") as data_dir:
            gate = ServerProcess(
                data_dir=data_dir, database_url=None, extra_args=["--upstream", address]
            ).start()
            try:
                pat = gate.create_user("bench")
                gate_pid = gate.process.pid
                for n in IN_FLIGHT:
                    log(f"{NAME}: {n} in flight, warm-up then {pairs} pairs of {duration}s rounds")
                    _grpc(gate.grpc_address, gate_pid, n, 1.0, pat, FORWARDED)
                    _grpc(address, upstream.pid, n, 1.0, pat, DIRECT)
                    where = {DIRECT: (address, upstream.pid), BARE: (proxy_address, proxy.pid)}
                    runs = [
                        _grpc(
                            *where.get(kind, (gate.grpc_address, gate_pid)), n, duration, pat, kind
                        )
                        for kind in _order(pairs, bare=True)
                    ]
                    tool = f"grpc.aio client, {n} in flight on one channel"
                    _section("gRPC", n, runs, tool, results, details)
                    _rest(gate, n, 1.0, pat)
                    rest = [
                        _grpc(address, upstream.pid, n, duration, pat, DIRECT)
                        if kind == DIRECT
                        else _rest(gate, n, duration, pat, kind)
                        for kind in _order(pairs)
                    ]
                    tool = f"{rest[-2].tool}, {n} keep-alive connections; direct: gRPC"
                    _section("REST", n, rest, tool, results, details)
            finally:
                stop_server(gate)
    finally:
        for process in (proxy, upstream):
            process.kill()
            process.wait(10)
    details.insert(1, f"Load average (1 min) {load_before} before the run, {_load()} after it.")
    details.insert(2, "")
    return results, details


if __name__ == "__main__":  # the bare proxy's process: PORT UPSTREAM
    import asyncio

    asyncio.run(_bare_proxy(int(sys.argv[1]), sys.argv[2]))
