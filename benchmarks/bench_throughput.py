"""2. Throughput of an authenticated cheap method vs a NoAuth one, same server, REST and gRPC.

`MyScopes` with a PAT against `GetStatusCode` ("10000", NoAuth), in alternating rounds
(A B B A A B ...) so drift (other load on the machine, frequency) hits both alike. Both
carry the same `authorization` header, as the official clients send it on every call: the
difference is what the server does with it. The load comes from other processes: `wrk`
when installed (else Python threads) for REST, one `grpc.aio` client process with
concurrent calls on one channel for gRPC. The server's CPU time is read from /proc for
each round, so CPU per request is reported next to requests per second.
"""

from __future__ import annotations

from benchmarks import loadgen
from benchmarks.common import Result, log, median, start_server, stop_server, temp_dir

NAME = "2. throughput auth vs NoAuth"
TARGET_RATIO = 0.9
# Keep-alive HTTP clients stall ~40 ms per request on this server (see README: TCP_NODELAY),
# so saturating it over REST takes many connections, not a few fast ones.
REST_CONNECTIONS = 256
PYTHON_REST_CONNECTIONS = 128
GRPC_CONCURRENCY = 16
AUTH, NOAUTH = "MyScopes", "GetStatusCode"
SATURATED = 0.85  # server cores busy below which a round did not saturate the server


def abba(pairs: int) -> list[str]:
    order = []
    for i in range(pairs):
        order += [AUTH, NOAUTH] if i % 2 == 0 else [NOAUTH, AUTH]
    return order


def _sum_rps(runs) -> float:
    seconds = sum(r.seconds for r in runs)
    return sum(r.requests for r in runs) / seconds if seconds else 0.0


def _cpu_per_request(runs) -> float | None:
    cpu = [r.server_cpu_seconds for r in runs]
    if not runs or any(c is None for c in cpu):
        return None
    return sum(cpu) / max(1, sum(r.requests for r in runs)) * 1e6


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _section(transport, tool, runs, results, details) -> None:
    auth = [r for r in runs if r.label == AUTH]
    noauth = [r for r in runs if r.label == NOAUTH]
    auth_rps, noauth_rps = _sum_rps(auth), _sum_rps(noauth)
    ratio = auth_rps / noauth_rps if noauth_rps else float("nan")
    pair_ratios = [a.rps / b.rps for a, b in zip(auth, noauth, strict=True) if b.rps]
    bad = sum(r.non_ok + r.errors for r in runs)
    results.append(Result(NAME, f"{transport}: {AUTH} (PAT)", auth_rps, "req/s", note=tool))
    results.append(Result(NAME, f"{transport}: {NOAUTH} (NoAuth)", noauth_rps, "req/s", note=tool))
    note = (
        f"total over {len(auth)} rounds each; median of pairs {median(pair_ratios):.3f}, "
        f"range {min(pair_ratios):.3f}..{max(pair_ratios):.3f}"
        if pair_ratios
        else ""
    )
    busy = _mean([r.server_utilisation for r in runs])
    if busy is not None and busy < SATURATED:
        note += (
            f"; server not saturated ({busy:.2f} cores busy): req/s reflect the load "
            "generator or other load on the machine more than the server"
        )
    results.append(
        Result(
            NAME,
            f"{transport}: ratio auth/NoAuth",
            ratio,
            "",
            f">= {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
            note,
        )
    )
    cpu_a, cpu_b = _cpu_per_request(auth), _cpu_per_request(noauth)
    if cpu_a is not None and cpu_b is not None:
        results.append(
            Result(
                NAME,
                f"{transport}: server CPU per request auth / NoAuth",
                f"{cpu_a:.0f} / {cpu_b:.0f}",
                "µs",
                note=f"NoAuth/auth {cpu_b / cpu_a:.3f}: the ratio a CPU-bound server would show",
            )
        )
    if bad:
        results.append(
            Result(
                NAME,
                f"{transport}: non-success responses",
                bad,
                "",
                "0",
                False,
                "throttled or refused requests make the figures meaningless",
            )
        )
    details.append(f"**{transport}** ({tool}), rounds in the order run:")
    details.append("")
    details.append(
        "| round | method | req/s | p50 ms | p99 ms | server CPU µs/req "
        "| server cores busy | load generator cores busy |"
    )
    details.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    for i, run in enumerate(runs):
        details.append(
            f"| {i + 1} | {run.label} | {run.rps:,.0f} | {run.p50_us / 1000:.1f} | "
            f"{run.p99_us / 1000:.1f} | {fmt(run.server_cpu_us_per_request, '.0f')} | "
            f"{fmt(run.server_utilisation, '.2f')} | {fmt(run.client_utilisation, '.2f')} |"
        )
    details.append("")
    busy = {
        m: _mean([r.server_utilisation for r in rs]) for m, rs in ((AUTH, auth), (NOAUTH, noauth))
    }
    client = _mean([r.client_utilisation for r in runs])
    if None not in busy.values():
        details.append(
            f"Server cores busy on average: {busy[AUTH]:.2f} ({AUTH}), "
            f"{busy[NOAUTH]:.2f} ({NOAUTH}); load generator: "
            f"{'' if client is None else f'{client:.2f}'} cores."
        )
        details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.0 if options.quick else 2.0
    pairs = 3 if options.quick else 10
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-tput-") as data_dir:
        server = start_server(data_dir)
        try:
            pat = server.create_user("bench")
            pid = server.process.pid
            headers = {"authorization": "Key " + pat}
            urls = {
                AUTH: f"{server.http_url}/v2/myscopes",
                NOAUTH: f"{server.http_url}/v2/status_codes/10000",
            }
            use_wrk = loadgen.wrk_path() is not None
            connections = REST_CONNECTIONS if use_wrk else PYTHON_REST_CONNECTIONS

            def rest(method, seconds=duration):
                result = loadgen.start_http(
                    urls[method],
                    duration=seconds,
                    connections=connections,
                    headers=headers,
                    server_pid=pid,
                ).wait(seconds + 30)
                result.label = method
                return result

            log(
                f"{NAME}: REST warm-up, then {pairs} pairs of {duration}s rounds, "
                f"{connections} connections"
            )
            rest(AUTH, 1.0)
            rest(NOAUTH, 1.0)
            # One connection, one request at a time: the latency a plain client sees.
            single = loadgen.start_http(
                urls[AUTH], duration=2.0, connections=1, headers=headers, server_pid=pid
            ).wait(40)
            results.append(
                Result(
                    NAME,
                    "REST: latency p50 / p99, one keep-alive connection",
                    f"{single.p50_us / 1000:.1f} / {single.p99_us / 1000:.1f}",
                    "ms",
                    note=f"{single.rps:,.0f} req/s"
                    + (
                        f", server {single.server_utilisation:.0%} busy"
                        if single.server_utilisation is not None
                        else ""
                    )
                    + ": one request at a time",
                )
            )
            runs = [rest(method) for method in abba(pairs)]
            tool = f"{runs[0].tool}, {connections} keep-alive connections"
            _section("REST", tool, runs, results, details)

            log(f"{NAME}: gRPC, {pairs} pairs of {duration}s rounds")
            order = abba(pairs)
            runs = loadgen.start_grpc(
                server.grpc_address,
                order,
                duration=duration,
                concurrency=GRPC_CONCURRENCY,
                secret=pat,
                server_pid=pid,
            ).wait_all(len(order) * (duration + 1) + 60)
            tool = f"grpc.aio client, {GRPC_CONCURRENCY} concurrent calls on one channel"
            _section("gRPC", tool, runs, results, details)
        finally:
            stop_server(server)
    return results, details
