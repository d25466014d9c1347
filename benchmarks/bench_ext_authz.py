"""10. What an external authorization check costs: Envoy's `Check` over gRPC and
`/scopegate/v1/authorize` (forward auth) over HTTP, each against the NoAuth `GetStatusCode`
on the same transport and server (issue 15).

One server (SQLite, plaintext, one process) with a user and an app made through the API.
The check asks about `GET /v2/users/bench/apps/APP` (GetApp) with the user's PAT: route
matched, request decoded, credential and decision caches, policy, identity headers, as
proxies ask it on every request. 64 calls in flight: one `grpc.aio` client with 64
concurrent calls on one channel for gRPC, wrk with 64 keep-alive connections for HTTP.
Rounds alternate (A B B A ...) so drift hits both alike. Reports checks per second, p50
and p99 latency, and the ratio check / NoAuth (target >= 0.9: a check costs no more than
the cheapest call).
"""

from __future__ import annotations

import json
import urllib.request

from benchmarks import loadgen
from benchmarks.common import Result, log, median, start_server, stop_server, temp_dir

NAME = "10. external authorization checks"
TARGET_RATIO = 0.9
IN_FLIGHT = 64
APP = "bench-app"
NOAUTH, CHECK = "GetStatusCode (NoAuth)", "check"


def _order(pairs: int) -> list[str]:
    order = []
    for i in range(pairs):
        order += [NOAUTH, CHECK] if i % 2 == 0 else [CHECK, NOAUTH]
    return order


def _new_app(server, pat: str) -> None:
    request = urllib.request.Request(
        f"{server.http_url}/v2/users/me/apps",
        data=json.dumps({"apps": [{"id": APP}]}).encode(),
        headers={"authorization": f"Key {pat}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert json.loads(reply.read())["status"]["code"] == 10000


def _section(transport: str, what: str, tool: str, runs, results, details) -> None:
    by_kind = {kind: [r for r in runs if r.label == kind] for kind in (NOAUTH, CHECK)}
    rps = {}
    for kind, rounds in by_kind.items():
        seconds = sum(r.seconds for r in rounds)
        rps[kind] = sum(r.requests for r in rounds) / seconds if seconds else 0.0
        p99 = median([r.p99_us for r in rounds]) / 1000
        label = what if kind == CHECK else kind
        results.append(Result(NAME, f"{transport}: {label}", rps[kind], "req/s"))
        results.append(Result(NAME, f"{transport}: {label}, p99 at {IN_FLIGHT}", p99, "ms"))
    ratio = rps[CHECK] / rps[NOAUTH] if rps[NOAUTH] else float("nan")
    pairs = [a.rps / b.rps for a, b in zip(by_kind[CHECK], by_kind[NOAUTH], strict=True) if b.rps]
    note = f"{tool}; median of pairs {median(pairs):.3f}, range {min(pairs):.3f}..{max(pairs):.3f}"
    results.append(
        Result(
            NAME,
            f"{transport}: ratio check / NoAuth",
            ratio,
            "",
            f">= {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
            note,
        )
    )
    cpu = {}
    for kind, rounds in by_kind.items():
        used = [r.server_cpu_seconds for r in rounds]
        if rounds and None not in used:
            cpu[kind] = sum(used) / max(1, sum(r.requests for r in rounds)) * 1e6
    if len(cpu) == 2:
        results.append(
            Result(
                NAME,
                f"{transport}: server CPU per request, NoAuth / check",
                f"{cpu[NOAUTH]:.0f} / {cpu[CHECK]:.0f}",
                "µs",
                note=f"NoAuth/check {cpu[NOAUTH] / cpu[CHECK]:.3f}: what a CPU-bound server shows",
            )
        )
    bad = sum(r.non_ok + r.errors for r in runs)
    if bad:
        results.append(Result(NAME, f"{transport}: non-success answers", bad, "", "0", False))
    details.append(f"**{transport}**: {what} vs {NOAUTH} ({tool}), rounds in the order run:")
    details.append("")
    details.append("| round | call | req/s | p50 ms | p99 ms | server CPU µs/req |")
    details.append("| ---: | --- | ---: | ---: | ---: | ---: |")
    for i, run in enumerate(runs):
        used = run.server_cpu_us_per_request
        details.append(
            f"| {i + 1} | {what if run.label == CHECK else run.label} | {run.rps:,.0f} | "
            f"{run.p50_us / 1000:.1f} | {run.p99_us / 1000:.1f} | "
            f"{'' if used is None else f'{used:.0f}'} |"
        )
    details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.0 if options.quick else 3.0
    pairs = 2 if options.quick else 4
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-extauthz-") as data_dir:
        server = start_server(data_dir)
        try:
            pat = server.create_user("bench")
            _new_app(server, pat)
            pid = server.process.pid

            def http(kind: str, seconds: float = duration):
                if kind == CHECK:
                    url = f"{server.http_url}/scopegate/v1/authorize"
                    headers = {
                        "authorization": f"Key {pat}",
                        "x-original-method": "GET",
                        "x-original-uri": f"/v2/users/bench/apps/{APP}",
                    }
                else:
                    url, headers = f"{server.http_url}/v2/status_codes/10000", {}
                result = loadgen.start_http(
                    url, duration=seconds, connections=IN_FLIGHT, headers=headers, server_pid=pid
                ).wait(seconds + 30)
                result.label = kind
                return result

            log(f"{NAME}: HTTP, warm-up then {pairs} pairs of {duration}s rounds")
            for kind in (NOAUTH, CHECK):
                http(kind, 1.0)
            runs = [http(kind) for kind in _order(pairs)]
            tool = f"{runs[0].tool}, {IN_FLIGHT} keep-alive connections"
            _section("HTTP", "/scopegate/v1/authorize", tool, runs, results, details)

            log(f"{NAME}: gRPC, {pairs} pairs of {duration}s rounds on one client")
            check = f"{loadgen.ENVOY_CHECK}@bench/{APP}"
            rounds = ["GetStatusCode" if kind == NOAUTH else check for kind in _order(pairs)]
            grpc_runs = loadgen.start_grpc(
                server.grpc_address,
                rounds,
                duration=duration,
                concurrency=IN_FLIGHT,
                secret=pat,
                expect={check: 0},
                server_pid=pid,
            ).wait_all(len(rounds) * (duration + 5) + 60)
            for result in grpc_runs:
                result.label = NOAUTH if result.label == "GetStatusCode" else CHECK
            tool = f"grpc.aio client, {IN_FLIGHT} concurrent calls on one channel"
            _section("gRPC", "Envoy Check", tool, grpc_runs, results, details)
        finally:
            stop_server(server)
    return results, details
