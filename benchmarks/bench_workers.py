"""12. Every core: `serve --workers 2` against one worker, REST and gRPC.

Two servers run side by side (SQLite, plaintext, two ports), each with a user made by its
CLI: one with the default single process, one with `--workers 2` (two processes sharing the
ports through SO_REUSEPORT under a supervising parent). `MyScopes` with a PAT, in rounds
alternating the two servers (A B B A ...), so drift hits both alike:

- REST: benchmark 2's load (`wrk -t1 -c256`, keep-alive): 256 connections spread over the
  workers by the kernel;
- gRPC: one HTTP/2 connection stays with the worker that accepted it, so the load is
  GRPC_CLIENTS `grpc.aio` client processes at once, each with a channel of its own
  (GRPC_CONCURRENCY calls in flight each); which worker holds each connection is read from
  /proc and reported.

The servers' CPU time (the parent and every worker) is read from /proc for each round.
Reports req/s of each, the ratio two workers / one (target >= 1.5 on REST) and CPU per
request. On a 2-core machine the load generators take a share of the same two cores, so
two workers cannot reach 2x; what they reach is the figure.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from benchmarks import loadgen
from benchmarks.bench_throughput import PYTHON_REST_CONNECTIONS, REST_CONNECTIONS
from benchmarks.common import Result, log, median, process_cpu_seconds, stop_server, temp_dir

NAME = "12. workers"
TARGET_RATIO = 1.5
METHOD = "MyScopes"
ONE, TWO = "1 worker", "2 workers"
GRPC_CLIENTS = 4
GRPC_CONCURRENCY = 8


def _order(pairs: int) -> list[str]:
    order = []
    for i in range(pairs):
        order += [ONE, TWO] if i % 2 == 0 else [TWO, ONE]
    return order


def _tree(parent: int) -> list[int]:
    """The parent and its children (the workers), from /proc."""
    pids = [parent]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                pids.append(int(entry))
    return pids


def _tree_cpu(pids: list[int]) -> float:
    return sum(process_cpu_seconds(pid) or 0.0 for pid in pids)


def _start(data_dir: Path, workers: int):
    from tests.support.server_process import ServerProcess

    extra = ["--workers", str(workers)] if workers > 1 else []
    server = ServerProcess(data_dir=data_dir, database_url=None, extra_args=extra).start()
    pat = server.create_user("bench")
    # Every worker announced itself (they answer /healthz one by one as they start).
    _until(lambda: workers == 1 or server.log().count(") serving") >= workers, 30)
    return server, pat


def _until(done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the load generators or workers")
        time.sleep(0.005)


def _grpc_holders(pids: list[int], port: int) -> list[int]:
    """Established connections to `port` held by each of `pids` (from /proc)."""
    accepted = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            next(handle)
            for line in handle:
                parts = line.split()
                if int(parts[1].split(":")[1], 16) == port and parts[3] == "01":
                    accepted.add(f"socket:[{parts[9]}]")
    counts = []
    for pid in pids:
        held = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                held += os.readlink(f"/proc/{pid}/fd/{fd}") in accepted
        counts.append(held)
    return counts


class _Round:
    def __init__(self, label: str, requests: int, seconds: float, cpu: float, bad: int, note=""):
        self.label, self.requests, self.seconds = label, requests, seconds
        self.cpu, self.bad, self.note = cpu, bad, note

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _section(transport: str, tool: str, runs: list[_Round], results, details) -> None:
    rps, cpu = {}, {}
    for mode in (ONE, TWO):
        rounds = [r for r in runs if r.label == mode]
        seconds = sum(r.seconds for r in rounds)
        requests = sum(r.requests for r in rounds)
        rps[mode] = requests / seconds if seconds else 0.0
        cpu[mode] = sum(r.cpu for r in rounds) / max(1, requests) * 1e6
        results.append(Result(NAME, f"{transport}: {METHOD} (PAT), {mode}", rps[mode], "req/s"))
    ratio = rps[TWO] / rps[ONE] if rps[ONE] else float("nan")
    ones = [r for r in runs if r.label == ONE]
    twos = [r for r in runs if r.label == TWO]
    pairs = [b.rps / a.rps for a, b in zip(ones, twos, strict=True) if a.rps]
    note = f"{tool}; median of pairs {median(pairs):.3f}, range {min(pairs):.3f}..{max(pairs):.3f}"
    target = f">= {TARGET_RATIO}" if transport == "REST" else ""
    ok = ratio >= TARGET_RATIO if transport == "REST" else None
    results.append(Result(NAME, f"{transport}: ratio 2 workers / 1", ratio, "", target, ok, note))
    results.append(
        Result(
            NAME,
            f"{transport}: server CPU per request, 1 worker / 2 workers",
            f"{cpu[ONE]:.0f} / {cpu[TWO]:.0f}",
            "µs",
            note="all the server's processes; the load generator's CPU is not counted",
        )
    )
    bad = sum(r.bad for r in runs)
    if bad:
        results.append(Result(NAME, f"{transport}: non-success responses", bad, "", "0", False))
    details.append(f"**{transport}** ({tool}), rounds in the order run:")
    details.append("")
    details.append("| round | server | req/s | server cores busy | server CPU µs/req | note |")
    details.append("| ---: | --- | ---: | ---: | ---: | --- |")
    for i, run in enumerate(runs):
        busy = run.cpu / run.seconds if run.seconds else 0.0
        per = run.cpu / max(1, run.requests) * 1e6
        details.append(
            f"| {i + 1} | {run.label} | {run.rps:,.0f} | {busy:.2f} | {per:.0f} | {run.note} |"
        )
    details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.0 if options.quick else 2.0
    pairs = 2 if options.quick else 5
    results: list[Result] = []
    details: list[str] = [
        f"Usable cores: {len(os.sched_getaffinity(0))}; load average at the start: "
        f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())} (1 / 5 / 15 min).",
        "",
    ]
    with temp_dir("sg-bench-w1-") as one_dir, temp_dir("sg-bench-w2-") as two_dir:
        servers = {}
        try:
            servers[ONE] = _start(one_dir, 1)
            servers[TWO] = _start(two_dir, 2)
            use_wrk = loadgen.wrk_path() is not None
            connections = REST_CONNECTIONS if use_wrk else PYTHON_REST_CONNECTIONS

            def rest(mode: str, seconds: float = duration) -> _Round:
                server, pat = servers[mode]
                pids = _tree(server.process.pid)
                cpu0 = _tree_cpu(pids)
                result = loadgen.start_http(
                    f"{server.http_url}/v2/myscopes",
                    duration=seconds,
                    connections=connections,
                    headers={"authorization": "Key " + pat},
                ).wait(seconds + 30)
                return _Round(
                    mode,
                    result.requests,
                    result.seconds,
                    _tree_cpu(pids) - cpu0,
                    result.non_ok + result.errors,
                )

            def grpc(mode: str, seconds: float = duration) -> _Round:
                server, pat = servers[mode]
                pids = _tree(server.process.pid)
                clients = [
                    loadgen.start_grpc(
                        server.grpc_address,
                        [METHOD],
                        duration=seconds,
                        concurrency=GRPC_CONCURRENCY,
                        secret=pat,
                    )
                    for _ in range(GRPC_CLIENTS)
                ]
                # The servers' CPU over the clients' measured windows (START .. STOP).
                _until(lambda: all(c._open or c._windows for c in clients), seconds + 60)
                cpu0 = _tree_cpu(pids)
                holders = _grpc_holders(pids[1:] or pids, server.grpc_port)
                _until(lambda: all(c._windows for c in clients), seconds + 60)
                cpu = _tree_cpu(pids) - cpu0
                done = [client.wait(seconds + 60) for client in clients]
                return _Round(
                    mode,
                    sum(r.requests for r in done),
                    max(r.seconds for r in done),
                    cpu,
                    sum(r.non_ok + r.errors for r in done),
                    note="connections per worker: " + " / ".join(map(str, holders)),
                )

            log(f"{NAME}: REST, warm-up then {pairs} pairs of {duration}s rounds")
            for mode in (ONE, TWO):
                rest(mode, 1.0)
            runs = [rest(mode) for mode in _order(pairs)]
            tool = f"wrk -t1, {connections} keep-alive connections" if use_wrk else "python-http"
            _section("REST", tool, runs, results, details)

            log(f"{NAME}: gRPC, warm-up then {pairs} pairs of {duration}s rounds")
            for mode in (ONE, TWO):
                grpc(mode, 1.0)
            runs = [grpc(mode) for mode in _order(pairs)]
            tool = (
                f"{GRPC_CLIENTS} grpc.aio client processes at once, one channel each, "
                f"{GRPC_CONCURRENCY} calls in flight each"
            )
            _section("gRPC", tool, runs, results, details)
            details.append(
                f"Load average at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}."
            )
        finally:
            for server, _ in servers.values():
                stop_server(server)
    return results, details
