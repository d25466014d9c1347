"""4. Garbage flood: which garbage reaches the database, and what a flood costs valid users.

Part A, in-process: kinds of garbage secrets are sent to an `Authenticator`; the database
is watched by `authenticator.store_lookups` and by a SQLAlchemy `before_cursor_execute`
counter. Checksum-invalid garbage must reach it 0 times.

Part B, the real server over REST: valid `MyScopes` throughput from 256 keep-alive
connections, alone and next to a flood of 64 more connections sending garbage (20% of the
connections), in alternating rounds. Two floods: checksum-invalid secrets (refused before
any I/O) and forged secrets with a valid checksum (CRC32 is public, so anyone can make
them: each one costs a database query).
"""

from __future__ import annotations

import asyncio
import random
import string
import time

from sqlalchemy import event

from benchmarks import loadgen
from benchmarks.common import (
    Result,
    log,
    open_services,
    sign_up,
    start_server,
    stop_server,
    temp_dir,
)
from benchmarks.keystore import _secret_factory

NAME = "4. garbage flood"
TARGET_DROP = 0.20
VALID_CONNECTIONS = 256
FLOOD_CONNECTIONS = 64
PYTHON_VALID_CONNECTIONS = 96
PYTHON_FLOOD_CONNECTIONS = 24


def _corrupt_checksum(secret: str, rng: random.Random) -> str:
    from scopegate.auth import tokens

    while True:
        position = len(secret) - 1 - rng.randrange(tokens.CHECKSUM_LENGTH)
        replacement = rng.choice(tokens.BASE62)
        candidate = secret[:position] + replacement + secret[position + 1 :]
        if candidate != secret and tokens.parse(candidate) is None:
            return candidate


def garbage_kinds(n: int, rng: random.Random) -> dict[str, list[str]]:
    from scopegate.auth import tokens

    valid = _secret_factory(rng)
    printable = string.ascii_letters + string.digits + string.punctuation
    prefixes = list(tokens.KIND_BY_PREFIX)
    body_len = tokens.SECRET_LENGTH - tokens.PREFIX_LENGTH
    return {
        "checksum-invalid (one checksum char changed)": [
            _corrupt_checksum(valid(), rng) for _ in range(n)
        ],
        "well-formed-looking random (prefix + 36 base62)": [
            rng.choice(prefixes) + "".join(rng.choices(tokens.BASE62, k=body_len)) for _ in range(n)
        ],
        "random printable, random length": [
            "".join(rng.choices(printable, k=rng.randint(1, 80))) for _ in range(n)
        ],
        "forged: valid checksum, unknown": [valid() for _ in range(n)],
        "32 hex (legacy import format)": [f"{rng.getrandbits(128):032x}" for _ in range(n)],
    }


EXPECT_ZERO = {
    "checksum-invalid (one checksum char changed)",
    "well-formed-looking random (prefix + 36 base62)",
    "random printable, random length",
}


async def _send(authenticator, secrets: list[str]) -> tuple[int, float]:
    from scopegate.status import ApiError

    refused = 0
    started = time.perf_counter_ns()
    for secret in secrets:
        try:
            await authenticator.authenticate("Key " + secret)
        except ApiError:
            refused += 1
    return refused, (time.perf_counter_ns() - started) / max(1, len(secrets)) / 1000


def _part_a(options, results: list[Result], details: list[str]) -> None:
    from scopegate.authentication import Authenticator

    n_cheap = 5_000 if options.quick else 20_000
    n_db = 1_000 if options.quick else 5_000
    rng = random.Random(11)
    with temp_dir("sg-bench-garbage-") as data_dir:
        services = open_services(data_dir)
        pat = sign_up(services, "bench")
        statements = {"n": 0}

        @event.listens_for(services.engine, "before_cursor_execute")
        def _count(*_args, **_kwargs):
            statements["n"] += 1

        authenticator = Authenticator(services.engine, services.hasher)
        asyncio.run(authenticator.authenticate("Key " + pat))  # the valid key, cached
        kinds = garbage_kinds(n_cheap, rng)
        details.append("Part A, in-process (`Authenticator`, SQLite):")
        details.append("")
        details.append(
            "| garbage | sent | refused | store_lookups | SQL statements | µs per refusal |"
        )
        details.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for kind, secrets in kinds.items():
            if kind not in EXPECT_ZERO:
                secrets = secrets[:n_db]  # each reaches the database: fewer, same answer
            lookups0, statements0 = authenticator.store_lookups, statements["n"]
            refused, per_call = asyncio.run(_send(authenticator, secrets))
            lookups = authenticator.store_lookups - lookups0
            sql = statements["n"] - statements0
            details.append(
                f"| {kind} | {len(secrets):,} | {refused:,} | {lookups:,} | {sql:,} | "
                f"{per_call:.1f} |"
            )
            if kind in EXPECT_ZERO:
                results.append(
                    Result(
                        NAME,
                        f"DB queries: {kind}",
                        sql + lookups,
                        "",
                        "0",
                        sql + lookups == 0 and refused == len(secrets),
                        f"{len(secrets):,} sent, {per_call:.1f} µs each",
                    )
                )
            else:
                results.append(
                    Result(
                        NAME,
                        f"DB queries: {kind}",
                        lookups,
                        "",
                        note=f"{len(secrets):,} sent: one lookup each, {per_call:.0f} µs each",
                    )
                )
        # The negative cache: the same forged secret over and over reaches the DB once.
        repeated = [kinds["forged: valid checksum, unknown"][-1]] * n_cheap
        lookups0 = authenticator.store_lookups
        refused, per_call = asyncio.run(_send(authenticator, repeated))
        lookups = authenticator.store_lookups - lookups0
        details.append(
            f"| one forged secret repeated | {len(repeated):,} | {refused:,} | {lookups:,} | "
            f"| {per_call:.1f} |"
        )
        details.append("")
        results.append(
            Result(
                NAME,
                "DB queries: one forged secret repeated",
                lookups,
                "",
                "<= 1",
                lookups <= 1,
                f"{len(repeated):,} sent; negative cache",
            )
        )
        services.engine.dispose()


def _write_lines(path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _part_b(options, results: list[Result], details: list[str]) -> None:
    duration = 1.5 if options.quick else 3.0
    rounds = 2 if options.quick else 4
    timeout = duration + 30
    rng = random.Random(13)
    with temp_dir("sg-bench-flood-") as data_dir:
        invalid_file = data_dir / "garbage-invalid.txt"
        forged_file = data_dir / "garbage-forged.txt"
        kinds = garbage_kinds(50_000, rng)
        _write_lines(invalid_file, kinds["checksum-invalid (one checksum char changed)"])
        _write_lines(forged_file, kinds["forged: valid checksum, unknown"])
        server = start_server(data_dir / "server")
        try:
            pat = server.create_user("bench")
            pid = server.process.pid
            use_wrk = loadgen.wrk_path() is not None
            valid_c = VALID_CONNECTIONS if use_wrk else PYTHON_VALID_CONNECTIONS
            flood_c = FLOOD_CONNECTIONS if use_wrk else PYTHON_FLOOD_CONNECTIONS
            url = f"{server.http_url}/v2/myscopes"
            headers = {"authorization": "Key " + pat}

            def valid():
                return loadgen.start_http(
                    url,
                    duration=duration,
                    connections=valid_c,
                    headers=headers,
                    server_pid=pid,
                )

            def flood(secrets_file, seconds):
                return loadgen.start_http(
                    url, duration=seconds, connections=flood_c, secrets_file=secrets_file
                )

            def with_flood(secrets_file):
                # The flood starts 0.5 s before and ends ~0.5 s after the valid window; its
                # rate is averaged over its whole run (a little above the rate during it).
                flooding = flood(secrets_file, duration + 1)
                time.sleep(0.5)
                measured = valid().wait(timeout)
                return measured, flooding.wait(timeout)

            log(f"{NAME}: REST warm-up")
            valid().wait(timeout)
            garbage_cost = loadgen.start_http(
                url,
                duration=duration,
                connections=valid_c,
                secrets_file=invalid_file,
                server_pid=pid,
            ).wait(timeout)
            forged_cost = loadgen.start_http(
                url,
                duration=duration,
                connections=valid_c,
                secrets_file=forged_file,
                server_pid=pid,
            ).wait(timeout)
            log(f"{NAME}: REST, {rounds} rounds x (alone, invalid flood, forged flood)")
            alone, invalid, forged = [], [], []
            for _ in range(rounds):
                alone.append(valid().wait(timeout))
                invalid.append(with_flood(invalid_file))
                forged.append(with_flood(forged_file))
        finally:
            stop_server(server)

    def rps(runs):
        return sum(r.requests for r in runs) / sum(r.seconds for r in runs)

    base = rps(alone)
    details.append(
        f"Part B, real server over REST ({alone[0].tool}): valid `MyScopes` from {valid_c} "
        f"keep-alive connections; floods from {flood_c} more connections, each request a "
        "different garbage secret."
    )
    details.append("")
    details.append(
        "| round | valid req/s alone | valid req/s, invalid flood (flood req/s) | "
        "valid req/s, forged flood (flood req/s) |"
    )
    details.append("| ---: | ---: | ---: | ---: |")
    for i, (a, (vi, fi), (vf, ff)) in enumerate(zip(alone, invalid, forged, strict=True)):
        details.append(
            f"| {i + 1} | {a.rps:,.0f} | {vi.rps:,.0f} ({fi.rps:,.0f}) | "
            f"{vf.rps:,.0f} ({ff.rps:,.0f}) |"
        )
    details.append("")
    for label, runs, target in (
        ("checksum-invalid flood", invalid, True),
        ("forged-secret flood", forged, False),
    ):
        valid_rps = rps([v for v, _ in runs])
        flood_rps = rps([f for _, f in runs])
        drop = 1 - valid_rps / base
        displaced = (base - valid_rps) / flood_rps if flood_rps else float("nan")
        results.append(
            Result(
                NAME,
                f"valid req/s drop under {label}",
                f"{drop * 100:.1f}%",
                "",
                f"<= {TARGET_DROP * 100:.0f}%" if target else "",
                (drop <= TARGET_DROP) if target else None,
                f"{base:,.0f} → {valid_rps:,.0f} req/s with {flood_rps:,.0f} garbage req/s; "
                f"{displaced:.2f} valid requests lost per garbage request",
            )
        )
    for label, run in (
        ("valid MyScopes", None),
        ("checksum-invalid garbage", garbage_cost),
        ("forged garbage", forged_cost),
    ):
        if run is None:
            cpu = [r.server_cpu_us_per_request for r in alone]
            value = None if any(c is None for c in cpu) else sum(cpu) / len(cpu)
        else:
            value = run.server_cpu_us_per_request
        if value is not None:
            results.append(
                Result(
                    NAME,
                    f"server CPU per request: {label}",
                    value,
                    "µs",
                    note="saturating the server with that traffic alone",
                )
            )


def run(options) -> tuple[list[Result], list[str]]:
    results: list[Result] = []
    details: list[str] = []
    log(f"{NAME}: in-process garbage kinds")
    _part_a(options, results, details)
    _part_b(options, results, details)
    return results, details
