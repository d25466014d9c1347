"""5. Requests that need a relation: a collaborator's PAT on someone else's app, and a
stranger's PAT reading a PUBLIC app, against the NoAuth method, over REST.

Both look up how the caller stands to the app's owner (collaborator grant, organization
roles and teams, visibility): cached per (caller, owner, app) and evicted through the
change log, so the steady state does no I/O for it. Methods, chosen so the handler costs
next to nothing and the difference is authorization:

- collaborator: `MyScopes` naming the owner's app (no scopes required; answered from the
  credential in memory);
- public app: `GetWorkflow` on the public app: authorized as a public read (its scopes are
  all `*_Get`), then answered NOT_IMPLEMENTED (HTTP 404) since scopegate serves no
  workflows; every answer is checked to be exactly that, not a denial;
- for scale, `GetApp` on the public app too, whose handler reads the app's row.

Rounds rotate the methods (each position in turn), so drift hits all alike.
"""

from __future__ import annotations

import json
import math
import statistics
import urllib.error
import urllib.request

from benchmarks import loadgen
from benchmarks.common import Result, log, median, start_server, stop_server, temp_dir

NAME = "5. collaborator and public-app requests"
TARGET_RATIO = 0.9
CONNECTIONS = 256
PYTHON_CONNECTIONS = 128
NOAUTH, COLLABORATOR, PUBLIC, PUBLIC_DB = (
    "GetStatusCode (NoAuth)",
    "MyScopes, collaborator PAT",
    "GetWorkflow, stranger PAT on a public app",
    "GetApp, stranger PAT on a public app",
)
EXPECTED_CODE = {NOAUTH: 10000, COLLABORATOR: 10000, PUBLIC: 10040, PUBLIC_DB: 10000}


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
    """URLs and PATs per method, after checking each answers as intended."""
    owner, collaborator, stranger = "owner", "guest", "stranger"
    pats = {name: server.create_user(name) for name in (owner, collaborator, stranger)}
    base = server.http_url
    for app_id, visibility in (("private", 10), ("public", 50)):
        made = _request(
            f"{base}/v2/users/me/apps",
            pats[owner],
            "POST",
            {"apps": [{"id": app_id, "visibility": {"gettable": visibility}}]},
        )
        assert made["status"]["code"] == 10000, made
    granted = _request(
        f"{base}/v2/users/{owner}/apps/private/collaborators",
        pats[owner],
        "POST",
        {"collaborators": [{"user": {"id": collaborator}, "scopes": ["All"]}]},
    )
    assert granted["status"]["code"] == 10000, granted
    urls = {
        NOAUTH: f"{base}/v2/status_codes/10000",
        COLLABORATOR: f"{base}/v2/users/{owner}/apps/private/myscopes",
        PUBLIC: f"{base}/v2/users/{owner}/apps/public/workflows/general",
        PUBLIC_DB: f"{base}/v2/users/{owner}/apps/public",
    }
    callers = {
        NOAUTH: pats[collaborator],
        COLLABORATOR: pats[collaborator],
        PUBLIC: pats[stranger],
        PUBLIC_DB: pats[stranger],
    }
    for method, url in urls.items():
        code = _request(url, callers[method])["status"]["code"]
        if code != EXPECTED_CODE[method]:
            raise RuntimeError(f"{method}: answered {code}, expected {EXPECTED_CODE[method]}")
    return urls, callers


GRPC_CONCURRENCY = 16
# gRPC rounds: the same requests as the REST ones, named for benchmarks.loadgen.
GRPC_ROUNDS = {
    NOAUTH: "GetStatusCode",
    COLLABORATOR: "MyScopes@owner/private",
    PUBLIC: "GetWorkflow@owner/public",
    PUBLIC_DB: "GetApp@owner/public",
}


def _rotation(methods: list[str], cycles: int) -> list[str]:
    """Each method once per cycle, the starting one shifting, so drift hits all alike."""
    order = []
    for cycle in range(cycles):
        shift = cycle % len(methods)
        order += methods[shift:] + methods[:shift]
    return order


# The targeted ratios get most of the time: one method's rounds vary by ±5-25 % on a shared
# 2-core machine, so each ratio needs many cycles. GetApp, shown for scale only, gets a few.
TARGETED = [NOAUTH, COLLABORATOR, PUBLIC]
SCALE = [NOAUTH, PUBLIC_DB]


def _schedule(quick: bool) -> tuple[list[str], list[str]]:
    return _rotation(TARGETED, 2 if quick else 20), _rotation(SCALE, 1 if quick else 3)


def run(options) -> tuple[list[Result], list[str]]:
    duration = 1.0 if options.quick else 2.0
    targeted_order, scale_order = _schedule(options.quick)
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-rel-") as data_dir:
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

            rounds = len(targeted_order) + len(scale_order)
            log(f"{NAME}: REST warm-up, then {rounds} rounds of {duration}s")
            for method in TARGETED + SCALE[1:]:
                rest(method, 1.0)
            targeted_runs = [rest(method) for method in targeted_order]
            scale_runs = [rest(method) for method in scale_order]
            tool = f"{targeted_runs[0].tool}, {connections} keep-alive connections"
            _summarise("REST", tool, targeted_runs, scale_runs, results, details)

            log(f"{NAME}: gRPC, {rounds} rounds of {duration}s")
            secrets_file = data_dir / "round-secrets.json"
            methods = TARGETED + SCALE[1:]
            secrets_file.write_text(json.dumps({GRPC_ROUNDS[m]: callers[m] for m in methods}))
            grpc_runs = loadgen.start_grpc(
                server.grpc_address,
                [GRPC_ROUNDS[m] for m in targeted_order + scale_order],
                duration=duration,
                concurrency=GRPC_CONCURRENCY,
                round_secrets_file=secrets_file,
                expect={GRPC_ROUNDS[m]: EXPECTED_CODE[m] for m in methods},
                server_pid=pid,
            ).wait_all(rounds * (duration + 1) + 60)
            by_round = {GRPC_ROUNDS[m]: m for m in methods}
            for result in grpc_runs:
                result.label = by_round[result.label]
            tool = f"grpc.aio client, {GRPC_CONCURRENCY} concurrent calls on one channel"
            split = len(targeted_order)
            _summarise("gRPC", tool, grpc_runs[:split], grpc_runs[split:], results, details)
        finally:
            stop_server(server)
    return results, details


def _rps(rounds) -> float:
    seconds = sum(r.seconds for r in rounds)
    return sum(r.requests for r in rounds) / seconds if seconds else 0.0


def _ratio(transport: str, method: str, runs, methods: list[str], targeted: bool) -> Result:
    """`method`'s requests/s over all its rounds against NoAuth's in the same block, with
    the spread of the ratios within each cycle (which share that cycle's drift)."""
    base = _rps([r for r in runs if r.label == NOAUTH])
    ratio = _rps([r for r in runs if r.label == method]) / base if base else float("nan")
    per_cycle = []
    for i in range(0, len(runs), len(methods)):
        cycle = {r.label: r.rps for r in runs[i : i + len(methods)]}
        if cycle.get(NOAUTH):
            per_cycle.append(cycle[method] / cycle[NOAUTH])
    note = f"total over {len(per_cycle)} rounds each"
    if len(per_cycle) > 1:
        error = 2 * statistics.stdev(per_cycle) / math.sqrt(len(per_cycle))
        note += (
            f"; per cycle: median {median(per_cycle):.3f}, mean "
            f"{statistics.fmean(per_cycle):.3f} ± {error:.3f} (2 standard errors), range "
            f"{min(per_cycle):.3f}..{max(per_cycle):.3f}"
        )
    if not targeted:
        note = f"its handler reads the app's row: shown for scale; {note}"
    name, who = method.split(", ", 1)
    return Result(
        NAME,
        f"{transport}: ratio {name} / NoAuth ({who})",
        ratio,
        "",
        f">= {TARGET_RATIO}" if targeted else "",
        ratio >= TARGET_RATIO if targeted else None,
        note,
    )


def _summarise(
    transport: str, tool: str, targeted, scale, results: list[Result], details: list[str]
) -> None:
    runs = targeted + scale
    results.append(
        Result(
            NAME,
            f"{transport}: {NOAUTH}",
            _rps([r for r in targeted if r.label == NOAUTH]),
            "req/s",
            note=tool,
        )
    )
    for method, block, methods in (
        (COLLABORATOR, targeted, TARGETED),
        (PUBLIC, targeted, TARGETED),
        (PUBLIC_DB, scale, SCALE),
    ):
        results.append(
            Result(
                NAME,
                f"{transport}: {method}",
                _rps([r for r in block if r.label == method]),
                "req/s",
            )
        )
        results.append(_ratio(transport, method, block, methods, targeted=block is targeted))
    refused = sum(r.errors for r in runs)
    if transport == "REST":
        # wrk counts HTTP statuses: every answer but the public GetWorkflow's is a 200.
        off = sum(r.non_ok for r in runs if r.label != PUBLIC)
        off += sum(r.requests - r.non_ok for r in runs if r.label == PUBLIC)
    else:
        off = sum(r.non_ok for r in runs)  # statuses checked against EXPECTED_CODE
    if refused or off:
        results.append(
            Result(
                NAME,
                f"{transport}: unexpected answers or socket errors",
                refused + off,
                "",
                "0",
                False,
            )
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
