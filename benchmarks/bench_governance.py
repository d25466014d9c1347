"""Credential governance (issue 14): what fine-grained PATs, organization token policies
and refusal records cost.

A fine-grained PAT's limits are loaded with the credential and an organization's policy is
held in memory, so both are checked without I/O: their requests should keep pace with an
unlimited PAT's. Rounds of `MyScopes` (no scopes required; answered from the credential in
memory) with an unlimited PAT and a PAT limited to the app on the caller's own app, and
with a compliant PAT on an organization's app under a policy (expiry required within 30
days), against the NoAuth method (`GetStatusCode`), rotated so drift hits all alike, over
REST and gRPC.

Refusal records: two servers side by side, one recording refusals and one with
SCOPEGATE_REFUSAL_RECORDS=0, both answering a stranger's PAT that names the owner's
private app (`MyScopes`: 11101, refused by the policy on every request); rounds alternate
between them and the server's CPU per refused request is compared (the written batches
included: they run in the server process).
"""

from __future__ import annotations

import json
import math
import statistics
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from benchmarks import loadgen
from benchmarks.common import Result, log, median, start_server, stop_server, temp_dir

NAME = "8. credential governance"
TARGET_RATIO = 0.9
CONNECTIONS = 256
PYTHON_CONNECTIONS = 128
GRPC_CONCURRENCY = 16
NOAUTH, UNLIMITED, FINE, POLICY = (
    "GetStatusCode (NoAuth)",
    "MyScopes, unlimited PAT",
    "MyScopes, fine-grained PAT",
    "MyScopes, PAT under an organization policy",
)
METHODS = [NOAUTH, UNLIMITED, FINE, POLICY]
# gRPC rounds, named for benchmarks.loadgen (a name per round: `me` stands for the owner).
GRPC_ROUNDS = {
    NOAUTH: "GetStatusCode",
    UNLIMITED: "MyScopes@owner/app",
    FINE: "MyScopes@me/app",
    POLICY: "MyScopes@acme/app",
}


def _request(url: str, pat: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Key {pat}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def _setup(server) -> tuple[dict[str, str], dict[str, str]]:
    pat = server.create_user("owner")
    base = server.http_url
    made = _request(f"{base}/v2/users/me/apps", pat, "POST", {"apps": [{"id": "app"}]})
    assert made["status"]["code"] == 10000, made
    limited = _request(
        f"{base}/v2/users/me/keys",
        pat,
        "POST",
        {"keys": [{"type": "personal_access_token", "scopes": ["All"], "apps": [{"id": "app"}]}]},
    )
    assert limited["status"]["code"] == 10000, limited
    fine = limited["keys"][0]["id"]
    # An organization whose policy every credential reaching its apps is checked against:
    # expiry required within 30 days, and the owner's PAT that complies.
    org = _request(f"{base}/scopegate/v1/organizations", pat, "POST", {"id": "acme"})
    assert org["status"]["code"] == 10000, org
    made = _request(f"{base}/v2/users/acme/apps", pat, "POST", {"apps": [{"id": "app"}]})
    assert made["status"]["code"] == 10000, made
    policy = {"max_lifetime_days": 30, "require_expiry": True}
    set_policy = _request(f"{base}/scopegate/v1/organizations/acme/policy", pat, "PUT", policy)
    assert set_policy["status"]["code"] == 10000, set_policy
    expires = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expiring = _request(
        f"{base}/v2/users/me/keys",
        pat,
        "POST",
        {"keys": [{"type": "personal_access_token", "scopes": ["All"], "expires_at": expires}]},
    )
    assert expiring["status"]["code"] == 10000, expiring
    compliant = expiring["keys"][0]["id"]
    blocked = _request(f"{base}/v2/users/acme/apps/app/myscopes", pat)["status"]["code"]
    if blocked != 11008:
        raise RuntimeError(f"the policy did not block a PAT without expiry: {blocked}")
    urls = {
        NOAUTH: f"{base}/v2/status_codes/10000",
        UNLIMITED: f"{base}/v2/users/owner/apps/app/myscopes",
        FINE: f"{base}/v2/users/owner/apps/app/myscopes",
        POLICY: f"{base}/v2/users/acme/apps/app/myscopes",
    }
    callers = {NOAUTH: pat, UNLIMITED: pat, FINE: fine, POLICY: compliant}
    for method, url in urls.items():
        code = _request(url, callers[method])["status"]["code"]
        if code != 10000:
            raise RuntimeError(f"{method}: answered {code}")
    # Outside its app the fine-grained PAT is a stranger: checked once, not measured.
    outside = _request(f"{base}/v2/users/owner/apps/other/myscopes", fine)["status"]["code"]
    if outside != 11101:
        raise RuntimeError(f"the fine-grained PAT outside its app answered {outside}")
    return urls, callers


def _rotation(cycles: int) -> list[str]:
    order = []
    for cycle in range(cycles):
        shift = cycle % len(METHODS)
        order += METHODS[shift:] + METHODS[:shift]
    return order


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.0 if options.quick else 2.0
    order = _rotation(2 if options.quick else 12)
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-gov-") as data_dir:
        server = start_server(data_dir)
        try:
            urls, callers = _setup(server)
            pid = server.process.pid
            connections = CONNECTIONS if loadgen.wrk_path() else PYTHON_CONNECTIONS

            def rest(method, seconds=duration):
                result = loadgen.start_http(
                    urls[method],
                    duration=seconds,
                    connections=connections,
                    headers={"authorization": "Key " + callers[method]},
                    server_pid=pid,
                ).wait(seconds + 30)
                result.label = method
                return result

            log(f"{NAME}: REST warm-up, then {len(order)} rounds of {duration}s")
            for method in METHODS:
                rest(method, 1.0)
            runs = [rest(method) for method in order]
            tool = f"{runs[0].tool}, {connections} keep-alive connections"
            _summarise("REST", tool, runs, results, details)

            log(f"{NAME}: gRPC, {len(order)} rounds of {duration}s")
            secrets_file = data_dir / "round-secrets.json"
            secrets_file.write_text(json.dumps({GRPC_ROUNDS[m]: callers[m] for m in METHODS}))
            grpc_runs = loadgen.start_grpc(
                server.grpc_address,
                [GRPC_ROUNDS[m] for m in order],
                duration=duration,
                concurrency=GRPC_CONCURRENCY,
                round_secrets_file=secrets_file,
                expect={GRPC_ROUNDS[m]: 10000 for m in METHODS},
                server_pid=pid,
            ).wait_all(len(order) * (duration + 1) + 60)
            by_round = {GRPC_ROUNDS[m]: m for m in METHODS}
            for result in grpc_runs:
                result.label = by_round[result.label]
            tool = f"grpc.aio client, {GRPC_CONCURRENCY} concurrent calls on one channel"
            _summarise("gRPC", tool, grpc_runs, results, details)
        finally:
            stop_server(server)
    run_refusals_inprocess(options, results, details)
    run_refusals(options, results, details)
    return results, details


REFUSED_ROUNDS = 12
INPROCESS_CALLS = 20_000


def run_refusals_inprocess(options, results: list[Result], details: list[str]) -> None:
    """The same refused request dispatched in process (no transport, no other load's
    noise), by a dispatcher observed by the refusal recorder and by one that is not:
    CPU time per request, the recorder's batched write included."""
    import asyncio
    import time as clock

    from clarifai_grpc.grpc.api import resources_pb2, service_pb2

    from benchmarks.common import open_services, sign_up
    from scopegate.access.refusals import RefusalRecorder
    from scopegate.dispatch import Call
    from scopegate.server.serve import build_dispatcher

    calls = 2_000 if options.quick else INPROCESS_CALLS
    rounds = 2 if options.quick else 8
    with temp_dir("sg-bench-refusals-inproc-") as data_dir:
        services = open_services(data_dir)
        owner, stranger = sign_up(services, "owner"), sign_up(services, "stranger")
        recorder = RefusalRecorder(services.engine)
        dispatchers = {
            "recording": build_dispatcher(services, observers=[recorder]),
            "not recording": build_dispatcher(services),
        }
        catalog = services.catalog

        def call(name: str, secret: str, message) -> Call:
            return Call(catalog.methods[name], message, f"Key {secret}", None, "127.0.0.1")

        async def measure() -> dict[str, list[float]]:
            made = await dispatchers["recording"].dispatch(
                call(
                    "PostApps",
                    owner,
                    service_pb2.PostAppsRequest(apps=[resources_pb2.App(id="p")]),
                )
            )
            assert made[1] is None, made
            refused = service_pb2.MyScopesRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="owner", app_id="p")
            )
            per: dict[str, list[float]] = {name: [] for name in dispatchers}
            for dispatcher in dispatchers.values():  # warm the caches
                for _ in range(200):
                    await dispatcher.dispatch(call("MyScopes", stranger, refused))
            recorder.flush()
            for index in range(rounds):
                order = list(dispatchers) if index % 2 == 0 else list(dispatchers)[::-1]
                for name in order:
                    dispatcher = dispatchers[name]
                    started = clock.process_time()
                    for _ in range(calls):
                        _, error = await dispatcher.dispatch(call("MyScopes", stranger, refused))
                        assert error is not None and error.code == 11101
                    if name == "recording":
                        recorder.flush()  # its share of the batched writes
                    per[name].append((clock.process_time() - started) / calls * 1e6)
            return per

        per = asyncio.run(measure())
        services.engine.dispose()
    on, off = median(per["recording"]), median(per["not recording"])
    for name, value in (("recording", on), ("not recording", off)):
        results.append(
            Result(
                NAME,
                f"in process: refused dispatch (11101), {name}: CPU",
                value,
                "µs/req",
                note=f"median of {rounds} rounds of {calls:,} calls",
            )
        )
    results.append(
        Result(
            NAME,
            "in process: refused dispatch CPU, recording / not recording",
            on / off,
            "",
            note=(
                "a diagnostic, not the issue's bound: the recorder's cost (its batched SQLite "
                "write included) beside a bare dispatch, no transport; the bound is on a "
                "refused request (REST, below)"
            ),
        )
    )
    details.append(
        "In-process refused dispatch, CPU µs per request by round: "
        + "; ".join(
            f"{name}: {', '.join(f'{v:.1f}' for v in values)}" for name, values in per.items()
        )
    )
    details.append("")


def run_refusals(options, results: list[Result], details: list[str]) -> None:
    duration = 1.0 if options.quick else 2.0
    cycles = 2 if options.quick else REFUSED_ROUNDS
    with temp_dir("sg-bench-refusals-") as data_dir:
        servers = {
            "recording": start_server(data_dir / "on"),
            "not recording": start_server(data_dir / "off", env={"SCOPEGATE_REFUSAL_RECORDS": "0"}),
        }
        try:
            setups = {}
            for name, server in servers.items():
                pat = server.create_user("owner")
                stranger = server.create_user("stranger")
                base = server.http_url
                made = _request(f"{base}/v2/users/me/apps", pat, "POST", {"apps": [{"id": "p"}]})
                assert made["status"]["code"] == 10000, made
                url = f"{base}/v2/users/owner/apps/p/myscopes"
                code = _request(url, stranger)["status"]["code"]
                if code != 11101:
                    raise RuntimeError(f"{name}: the stranger was answered {code}")
                setups[name] = (server, url, stranger)
            connections = CONNECTIONS if loadgen.wrk_path() else PYTHON_CONNECTIONS

            def round_(name, seconds=duration):
                server, url, stranger = setups[name]
                result = loadgen.start_http(
                    url,
                    duration=seconds,
                    connections=connections,
                    headers={"authorization": "Key " + stranger},
                    server_pid=server.process.pid,
                ).wait(seconds + 30)
                result.label = name
                return result

            names = list(servers)
            log(f"{NAME}: refused requests, {2 * cycles} rounds of {duration}s")
            for name in names:
                round_(name, 1.0)
            runs = []
            for cycle in range(cycles):
                for name in names if cycle % 2 == 0 else names[::-1]:
                    runs.append(round_(name))
        finally:
            for server in servers.values():
                stop_server(server)
    cpu = {}
    for name in names:
        rounds = [r for r in runs if r.label == name]
        seconds = sum(r.server_cpu_seconds or 0.0 for r in rounds)
        requests = sum(r.requests for r in rounds)
        cpu[name] = seconds / requests * 1e6 if requests else float("nan")
        results.append(
            Result(
                NAME,
                f"REST refused (11101), {name}: server CPU",
                cpu[name],
                "µs/req",
                note=f"{_rps(rounds):,.0f} req/s over {len(rounds)} rounds",
            )
        )
    ratio = cpu["recording"] / cpu["not recording"]
    results.append(
        Result(
            NAME,
            "REST refused: CPU per request, recording / not recording",
            ratio,
            "",
            "<= 1.10",
            ratio <= 1.10,
            "the same refused request on two servers side by side, rounds alternating",
        )
    )
    details.append("Refused requests, rounds in the order run:")
    details.append("")
    details.append("| round | server | req/s | server CPU µs/req |")
    details.append("| ---: | --- | ---: | ---: |")
    for i, run_ in enumerate(runs):
        per = run_.server_cpu_us_per_request
        details.append(
            f"| {i + 1} | {run_.label} | {run_.rps:,.0f} | {'' if per is None else f'{per:.0f}'} |"
        )
    details.append("")


def _rps(rounds) -> float:
    seconds = sum(r.seconds for r in rounds)
    return sum(r.requests for r in rounds) / seconds if seconds else 0.0


def _ratio(transport: str, method: str, runs) -> Result:
    base = _rps([r for r in runs if r.label == NOAUTH])
    ratio = _rps([r for r in runs if r.label == method]) / base if base else float("nan")
    per_cycle = []
    for i in range(0, len(runs), len(METHODS)):
        cycle = {r.label: r.rps for r in runs[i : i + len(METHODS)]}
        if cycle.get(NOAUTH):
            per_cycle.append(cycle[method] / cycle[NOAUTH])
    note = f"total over {len(per_cycle)} rounds each"
    if len(per_cycle) > 1:
        error = 2 * statistics.stdev(per_cycle) / math.sqrt(len(per_cycle))
        note += (
            f"; per cycle: median {median(per_cycle):.3f}, mean "
            f"{statistics.fmean(per_cycle):.3f} ± {error:.3f} (2 standard errors)"
        )
    targeted = method in (FINE, POLICY)
    return Result(
        NAME,
        f"{transport}: ratio {method} / NoAuth",
        ratio,
        "",
        f">= {TARGET_RATIO}" if targeted else "",
        ratio >= TARGET_RATIO if targeted else None,
        note,
    )


def _summarise(transport: str, tool: str, runs, results: list[Result], details) -> None:
    for method in METHODS:
        rounds = [r for r in runs if r.label == method]
        cpu = [r.server_cpu_us_per_request for r in rounds if r.server_cpu_us_per_request]
        note = tool if method == NOAUTH else ""
        if cpu:
            note = (note + "; " if note else "") + f"server CPU {median(cpu):.0f} µs/req (median)"
        results.append(Result(NAME, f"{transport}: {method}", _rps(rounds), "req/s", note=note))
    for method in (UNLIMITED, FINE, POLICY):
        results.append(_ratio(transport, method, runs))
    off = sum(r.errors for r in runs) + sum(r.non_ok for r in runs)
    if off:
        results.append(
            Result(NAME, f"{transport}: unexpected answers or socket errors", off, "", "0", False)
        )
    details.append(f"{transport} rounds in the order run ({tool}):")
    details.append("")
    details.append("| round | method | req/s | p50 ms | p99 ms | server CPU µs/req |")
    details.append("| ---: | --- | ---: | ---: | ---: | ---: |")
    for i, run_ in enumerate(runs):
        cpu = run_.server_cpu_us_per_request
        details.append(
            f"| {i + 1} | {run_.label} | {run_.rps:,.0f} | {run_.p50_us / 1000:.1f} | "
            f"{run_.p99_us / 1000:.1f} | {'' if cpu is None else f'{cpu:.0f}'} |"
        )
    details.append("")
