"""13. Authentication at every concurrency: auth/NoAuth with 8 and with 256 connections,
REST and gRPC, a PAT and an app key, optionally against an earlier revision side by side.

One server (SQLite, plaintext) per build: the working tree, and, with
`BENCH_AUTH_BASELINE=<git revision>`, that revision too (its `src/` from `git archive`, run
with PYTHONPATH; `BENCH_AUTH_REVISION=<rev>` runs a revision instead of the working tree).
Each has a user (its CLI's `users create`) and an app with its default API key. Rounds
rotate `GetStatusCode` (NoAuth, sent with the app key's header, as clients send it),
`MyScopes` with the PAT and `MyScopes` with the app key, and alternate the builds, ROUNDS
times:

- REST: `wrk -t1 -cN` keep-alive, N = 8 (4 s rounds) and 256 (2 s rounds);
- gRPC: a `grpc.aio` client process per build and credential, one channel, N calls in
  flight (8: 4 s rounds, 256: 2 s rounds).

With one build and two cores or more (the default), the rounds are **paired**: two servers
of the build share one core (`common.servers_pinned`) while the load generators have the
other, and each round loads both at once, one with an authenticated call and the other with
NoAuth, then again with the servers swapped. Under a fair share of one core their
throughputs are in the inverse ratio of their CPU per request, so each round's quotient is
free of the drift between rounds (10-20 % for one method's rounds one after the other on two
shared cores) and of any difference between the two servers. With `BENCH_AUTH_BASELINE` (two
builds) or `BENCH_NO_PIN=1`, the rounds run one after the other as described above.

Reports, per build, transport and concurrency: req/s of each method, the ratios
MyScopes/GetStatusCode (target >= 0.95), and the server CPU per request of each (from
/proc), whose ratio NoAuth/auth is what a CPU-bound server would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import loadgen
from benchmarks.common import (
    REPO_ROOT,
    Result,
    log,
    median,
    pinning_wanted,
    servers_pinned,
    stop_server,
    temp_dir,
)

NAME = "13. auth at every concurrency"
TARGET_RATIO = 0.95
LEVELS = {8: 4.0, 256: 2.0}  # connections (or gRPC calls in flight) -> seconds per round
ROUNDS = 6
IN_PROCESS_BLOCKS = 6  # x 2 blocks (both orders) per process
NOAUTH, PAT, KEY = "GetStatusCode", "MyScopes (PAT)", "MyScopes (app key)"
LABELS = (NOAUTH, PAT, KEY)


class Build:
    def __init__(self, name: str, src: Path | None) -> None:
        self.name, self.src = name, src
        self.server = None
        self.pat = self.key = ""

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.src)} if self.src else {}

    def start(self, data_dir: Path) -> None:
        from tests.support.api import http
        from tests.support.server_process import ServerProcess

        self.server = ServerProcess(data_dir=data_dir, database_url=None, extra_env=self.env())
        self.server.start()
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "scopegate",
                "users",
                "create",
                "bench",
                "--email",
                "bench@example.com",
                "--json",
                "--data-dir",
                str(data_dir),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env()},
            timeout=60,
        )
        self.pat = json.loads(created.stdout)["pat"]
        status, body = http(
            self.server,
            "POST",
            "/v2/users/me/apps",
            headers={"authorization": f"Key {self.pat}", "content-type": "application/json"},
            body={"apps": [{"id": "benchapp"}]},
        )
        assert status == 200, body
        self.key = body["apps"][0]["metadata"]["default_api_key"]


def _source(revision: str, into: Path) -> Path:
    """`src/` of a revision, unpacked from `git archive`."""
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def _rest(build: Build, label: str, connections: int, seconds: float):
    result = _start_round("REST", build, label, connections, seconds)()
    result.label = label
    return result


def _grpc(build: Build, labels: list[str], concurrency: int, seconds: float):
    """The rounds of `labels` (in order): one client process for the app key's rounds
    (NoAuth and MyScopes), one for the PAT's."""
    server = build.server
    runs = []
    key_rounds = [label for label in labels if label != PAT]
    for label_set, secret in ((key_rounds, build.key), ([PAT], build.pat)):
        methods = [NOAUTH if label == NOAUTH else "MyScopes" for label in label_set]
        results = loadgen.start_grpc(
            server.grpc_address,
            methods,
            duration=seconds,
            concurrency=concurrency,
            secret=secret,
            server_pid=server.process.pid,
        ).wait_all(len(methods) * (seconds + 1) + 60)
        for label, result in zip(label_set, results, strict=True):
            result.label = label
            runs.append(result)
    return runs


def _rate(runs) -> tuple[float, float | None]:
    seconds = sum(r.seconds for r in runs)
    requests = sum(r.requests for r in runs)
    cpu = [r.server_cpu_seconds for r in runs]
    per = sum(cpu) / max(1, requests) * 1e6 if runs and None not in cpu else None
    return (requests / seconds if seconds else 0.0), per


def _ratios(where, auth_runs, noauth_runs, quotients, results, all_runs) -> None:
    """Per authenticated label: its req/s over NoAuth's (target), with the median of the
    rounds' `quotients` and the CPU per request of each side; then any failed requests."""
    for label in (PAT, KEY):
        auth_rps, cpu_a = _rate(auth_runs[label])
        noauth_rps, cpu_n = _rate(noauth_runs[label])
        ratio = auth_rps / noauth_rps if noauth_rps else float("nan")
        note = f"{auth_rps:,.0f} vs {noauth_rps:,.0f} req/s"
        if quotients[label]:
            note += f"; median of rounds {median(quotients[label]):.3f}"
        if cpu_a and cpu_n:
            note += (
                f"; server CPU {cpu_a:.0f} vs {cpu_n:.0f} µs/req (NoAuth/auth {cpu_n / cpu_a:.3f})"
            )
        results.append(
            Result(
                NAME,
                f"{where}: {label} / NoAuth",
                ratio,
                "",
                f">= {TARGET_RATIO}",
                ratio >= TARGET_RATIO,
                note,
            )
        )
    bad = sum(r.non_ok + r.errors for r in all_runs)
    if bad:
        results.append(Result(NAME, f"{where}: non-success responses", bad, "", "0", False))


def _report(transport, level, build, runs, results, details, tool) -> None:
    by = {label: [r for b, r in runs if r.label == label and b == build] for label in LABELS}
    rate = {label: _rate(rs) for label, rs in by.items()}
    where = f"{transport}, {level} conn., {build}"
    quotients = {
        label: [a.rps / b.rps for a, b in zip(by[label], by[NOAUTH], strict=True) if b.rps]
        for label in (PAT, KEY)
    }
    noauth = {label: by[NOAUTH] for label in (PAT, KEY)}
    everything = [r for rounds in by.values() for r in rounds]
    _ratios(where, by, noauth, quotients, results, everything)
    details.append(f"**{where}** ({tool}):")
    details.append("")
    details.append("| method | req/s | server CPU µs/req | rounds' req/s |")
    details.append("| --- | ---: | ---: | --- |")
    for label in LABELS:
        rps, per = rate[label]
        rounds = ", ".join(f"{r.rps:,.0f}" for r in by[label])
        details.append(
            f"| {label} | {rps:,.0f} | {'' if per is None else f'{per:.0f}'} | {rounds} |"
        )
    details.append("")


# Paired rounds: two servers of one build, pinned to one core, loaded at once, one with an
# authenticated call and the other with NoAuth, then the same with the servers swapped.
PAIRS = ((PAT, NOAUTH), (NOAUTH, PAT), (KEY, NOAUTH), (NOAUTH, KEY))


def _start_round(transport: str, build: Build, label: str, level: int, seconds: float):
    """Starts one server's load for a round; returns what waits for its result."""
    server = build.server
    secret = build.pat if label == PAT else build.key
    if transport == "REST":
        path = "/v2/status_codes/10000" if label == NOAUTH else "/v2/myscopes"
        run = loadgen.start_http_keyed(server, path, secret, duration=seconds, connections=level)
        return lambda: run.wait(seconds + 30)
    run = loadgen.start_grpc(
        server.grpc_address,
        [NOAUTH if label == NOAUTH else "MyScopes"],
        duration=seconds,
        concurrency=level,
        secret=secret,
        server_pid=server.process.pid,
    )
    return lambda: run.wait_all(seconds + 60)[0]


def _paired(transport, level, seconds, twins, rounds, results, details, tool) -> None:
    """Under a fair share of one core, two servers' throughputs are in the inverse ratio of
    their CPU per request: each round's quotient auth / NoAuth is free of the drift between
    rounds, and swapping the servers cancels any difference between them."""
    where = f"{transport}, {level} conn., paired"
    quotients: dict[str, list[float]] = {PAT: [], KEY: []}
    sums: dict[str, list] = {PAT: [], KEY: []}
    rows = []
    for _ in range(rounds):
        for labels in PAIRS:
            waits = [
                _start_round(transport, build, label, level, seconds)
                for build, label in zip(twins, labels, strict=True)
            ]
            got = [wait() for wait in waits]
            auth = labels[0] if labels[0] != NOAUTH else labels[1]
            a, n = got[labels.index(auth)], got[labels.index(NOAUTH)]
            if n.rps:
                quotients[auth].append(a.rps / n.rps)
            sums[auth].append((a, n))
            rows.append((labels, got))
    auth_runs = {label: [a for a, _ in sums[label]] for label in (PAT, KEY)}
    noauth_runs = {label: [n for _, n in sums[label]] for label in (PAT, KEY)}
    everything = [r for _, got in rows for r in got]
    _ratios(where, auth_runs, noauth_runs, quotients, results, everything)
    details.append(f"**{where}** ({tool}; two servers of the build, pinned to one core):")
    details.append("")
    details.append("| round | server A | req/s | server B | req/s | auth / NoAuth |")
    details.append("| ---: | --- | ---: | --- | ---: | ---: |")
    for i, (labels, got) in enumerate(rows):
        auth = 0 if labels[0] != NOAUTH else 1
        quotient = got[auth].rps / got[1 - auth].rps if got[1 - auth].rps else float("nan")
        details.append(
            f"| {i + 1} | {labels[0]} | {got[0].rps:,.0f} | {labels[1]} | {got[1].rps:,.0f} "
            f"| {quotient:.3f} |"
        )
    details.append("")


async def _in_process(blocks: int) -> dict[int, dict[str, list[float]]]:
    """CPU µs per request of each method through the server's ASGI app, in process (as
    benchmark 6 drives it), 8 and 256 requests in flight, in interleaved blocks."""
    from benchmarks.bench_gc import _build_app, _call
    from benchmarks.common import open_services, sign_up
    from scopegate.server import heap

    figures: dict[int, dict[str, list[float]]] = {}
    with temp_dir("sg-bench-levels-inproc-") as data_dir:
        services = open_services(data_dir)
        pat = sign_up(services, "bench")
        app = _build_app(services)
        from scopegate.services.apps import create_app

        with services.engine.begin() as conn:
            _app, key = create_app(conn, services.hasher, "bench", "benchapp")
        cases = {
            NOAUTH: ("/v2/status_codes/10000", key),
            PAT: ("/v2/myscopes", pat),
            KEY: ("/v2/myscopes", key),
        }
        heap.settle()
        for in_flight in LEVELS:
            waves = max(1, 6000 // in_flight)
            figures[in_flight] = {label: [] for label in LABELS}
            for block in range(blocks):
                order = list(cases.items())
                for label, (path, secret) in order if block % 2 == 0 else order[::-1]:
                    started = time.process_time()
                    for _ in range(waves):
                        statuses = await asyncio.gather(
                            *(_call(app, "GET", path, secret) for _ in range(in_flight))
                        )
                        if set(statuses) != {200}:
                            raise RuntimeError(f"{label}: statuses {sorted(set(statuses))}")
                    spent = time.process_time() - started
                    figures[in_flight][label].append(spent / (waves * in_flight) * 1e6)
        services.engine.dispose()
    return figures


def _in_process_rounds(builds: list[Build], blocks: int) -> dict[str, dict]:
    """`_in_process` one block at a time in a process of each build's code, alternating the
    builds, so a change is measured in process before and after side by side."""
    figures: dict[str, dict] = {build.name: {} for build in builds}
    for block in range(blocks):
        for build in builds if block % 2 == 0 else builds[::-1]:
            env = {**os.environ}
            if build.src:
                env["PYTHONPATH"] = f"{build.src}{os.pathsep}{REPO_ROOT}"
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_auth_levels", "--in-process", "2"],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            lines = [x for x in done.stdout.splitlines() if x.startswith(loadgen.MARK_JSON)]
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"in-process block failed:\n{done.stderr[-2000:]}")
            got = json.loads(lines[-1][len(loadgen.MARK_JSON) :])
            for level, by_label in got.items():
                mine = figures[build.name].setdefault(int(level), {})
                for label, values in by_label.items():
                    mine.setdefault(label, []).extend(values)
    return figures


def _report_in_process(name: str, figures, results, details) -> None:
    details.append(
        f"**In process, {name}** (the server's ASGI app driven as benchmark 6 drives it, no "
        "observers; CPU time per request, median of interleaved blocks, each in a fresh "
        "process; what other load on the machine hides least):"
    )
    details.append("")
    details.append(
        "| in flight | method | CPU µs/req (median) | best block | NoAuth / this, medians "
        "| NoAuth / this, median of blocks |"
    )
    details.append("| ---: | --- | ---: | ---: | ---: | ---: |")
    for in_flight, by_label in figures.items():
        base = median(by_label[NOAUTH])
        for label in LABELS:
            value = median(by_label[label])
            # Each block measured the three one after the other in one process: their
            # quotient moves less with the machine's load than either figure.
            blocks = median([n / a for n, a in zip(by_label[NOAUTH], by_label[label], strict=True)])
            details.append(
                f"| {in_flight} | {label} | {value:.1f} | {min(by_label[label]):.1f} | "
                f"{base / value:.3f} | {blocks:.3f} |"
            )
            if label != NOAUTH:
                results.append(
                    Result(
                        NAME,
                        f"in process, {in_flight} in flight, {name}: NoAuth / {label} CPU",
                        blocks,
                        "",
                        f">= {TARGET_RATIO}",
                        blocks >= TARGET_RATIO,
                        note=f"median of {len(by_label[label])} blocks' quotients; medians "
                        f"{value:.1f} vs {base:.1f} µs per request",
                    )
                )
    details.append("")


def run(options) -> tuple[list[Result], list[str]]:
    rounds = 2 if options.quick else ROUNDS
    results: list[Result] = []
    details: list[str] = [
        f"Load average at the start: {' / '.join(f'{v:.2f}' for v in os.getloadavg())} "
        "(1 / 5 / 15 min; 2 cores).",
        "",
    ]
    with temp_dir("sg-bench-levels-") as root:
        builds: list[Build] = []
        extra: list[Build] = []  # the second server of paired rounds
        baseline = os.environ.get("BENCH_AUTH_BASELINE")
        revision = os.environ.get("BENCH_AUTH_REVISION")
        if revision:
            (root / "after").mkdir()
            builds.append(Build(f"at {revision}", _source(revision, root / "after")))
        else:
            builds.append(Build("working tree", None))
        if baseline:
            (root / "before").mkdir()
            builds.append(Build(f"at {baseline}", _source(baseline, root / "before")))
        try:
            for i, build in enumerate(builds):
                if not os.environ.get("BENCH_AUTH_IN_PROCESS_ONLY"):
                    build.start(root / f"data{i}")
            use_wrk = loadgen.wrk_path() is not None
            # BENCH_AUTH_IN_PROCESS_ONLY=1: the in-process part alone (a busy machine).
            transports = () if os.environ.get("BENCH_AUTH_IN_PROCESS_ONLY") else ("REST", "gRPC")
            # One build and a core to pin to: paired rounds on two servers of that build.
            paired = bool(transports) and len(builds) == 1 and pinning_wanted()
            if paired:
                twin = Build(builds[0].name, builds[0].src)
                twin.start(root / "twin")
                extra.append(twin)
            pids = [b.server.process.pid for b in builds + extra if b.server is not None]
            pinned = (
                servers_pinned(pids) if pids and pinning_wanted() else contextlib.nullcontext("")
            )
            with pinned as note:
                if note:
                    details += [note, ""]
                for transport in transports if paired else ():
                    for level, seconds in LEVELS.items():
                        passes = max(1, rounds // 2)
                        log(f"{NAME}: {transport}, {level} connections, {passes} paired passes")
                        tool = (
                            f"wrk -t1 -c{level} per server, {seconds:g} s rounds"
                            if transport == "REST" and use_wrk
                            else f"{level} connections per server, {seconds:g} s rounds"
                            if transport == "REST"
                            else f"grpc.aio, one channel per server, {level} calls in flight, "
                            f"{seconds:g} s rounds"
                        )
                        twins = [builds[0], extra[0]]
                        _paired(transport, level, seconds, twins, passes, results, details, tool)
                for transport in () if paired else transports:
                    for level, seconds in LEVELS.items():
                        log(f"{NAME}: {transport}, {level} connections, {rounds} rounds of each")
                        runs = []
                        for r in range(rounds):
                            order = builds if r % 2 == 0 else builds[::-1]
                            labels = list(LABELS[r % 3 :] + LABELS[: r % 3])
                            for build in order:
                                if transport == "REST":
                                    got = [_rest(build, label, level, seconds) for label in labels]
                                else:
                                    got = _grpc(build, labels, level, seconds)
                                runs += [(build.name, result) for result in got]
                        tool = (
                            f"wrk -t1 -c{level}, {seconds:g} s rounds"
                            if transport == "REST" and use_wrk
                            else f"{level} connections, {seconds:g} s rounds"
                            if transport == "REST"
                            else f"grpc.aio, one channel, {level} calls in flight, "
                            f"{seconds:g} s rounds"
                        )
                        for build in builds:
                            _report(transport, level, build.name, runs, results, details, tool)
            log(f"{NAME}: in process, 8 and 256 requests in flight, builds alternating")
            figures = _in_process_rounds(builds, 3 if options.quick else IN_PROCESS_BLOCKS)
            for build in builds:
                _report_in_process(build.name, figures[build.name], results, details)
        finally:
            for build in builds + extra:
                if build.server is not None:
                    stop_server(build.server)
    details.append(f"Load average at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}.")
    return results, details


if __name__ == "__main__":  # one in-process block, for `_in_process_rounds`
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--in-process", type=int, required=True, help="blocks")
    blocks = parser.parse_args().in_process
    measured = asyncio.run(_in_process(blocks))
    print(loadgen.MARK_JSON + json.dumps(measured), flush=True)
