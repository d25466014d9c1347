"""4. Garbage flood: which garbage reaches the database, and what a flood costs valid users.

Part A, in-process: kinds of garbage secrets are sent to an `Authenticator` set up as the
server sets it up; the database is watched by `authenticator.store_lookups` and by a
SQLAlchemy `before_cursor_execute` counter. Checksum-invalid garbage, and legacy-format
(32 hex) strings while no key was ever imported, must reach it 0 times.

Part B, the real server over REST: valid `MyScopes` throughput from 256 keep-alive
connections, alone and next to a flood of 64 more connections sending garbage (20% of the
connections), in alternating rounds. Two floods: checksum-invalid secrets (refused before
any I/O) and forged secrets with a valid checksum (CRC32 is public, so anyone can make
them: each one costs a database query). Twice: with the server's defaults (failed
authentications throttled per client address, the target), then with the throttle off
(`SCOPEGATE_AUTH_FAILURE_LIMIT=0`), which shows what a refusal itself costs: what a flood
spread over many addresses, each under its limit, would cost.
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
        LEGACY: [f"{rng.getrandbits(128):032x}" for _ in range(n)],
    }


LEGACY = "32 hex (legacy import format), no key imported"
EXPECT_ZERO = {
    "checksum-invalid (one checksum char changed)",
    "well-formed-looking random (prefix + 36 base62)",
    "random printable, random length",
    LEGACY,
}


async def _send(authenticator, secrets: list[str]) -> tuple[int, float]:
    from scopegate.contract.status import ApiError

    refused = 0
    started = time.perf_counter_ns()
    for secret in secrets:
        try:
            await authenticator.authenticate("Key " + secret)
        except ApiError:
            refused += 1
    return refused, (time.perf_counter_ns() - started) / max(1, len(secrets)) / 1000


def _part_a(options, results: list[Result], details: list[str]) -> None:
    from scopegate.access.authentication import Authenticator
    from scopegate.access.invalidation import ChangeWatcher
    from scopegate.access.relations import RelationResolver
    from scopegate.auth.principal import CredentialKind
    from scopegate.services.audit import cli_actor
    from scopegate.services.keys import import_key

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
        watcher = ChangeWatcher(services.engine, authenticator, RelationResolver(services.engine))
        watcher.start_position()  # as the server starts: is any legacy key stored?
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
        # Once one key was imported, every legacy-format string is a query again.
        with services.engine.begin() as conn:
            import_key(
                conn,
                services.hasher,
                secret=f"{rng.getrandbits(128):032x}",
                kind=CredentialKind.PAT,
                user_id="bench",
                app=None,
                description="",
                scopes=["All"],
                actor=cli_actor("bench"),
            )
        watcher.start_position()
        hexes = [f"{rng.getrandbits(128):032x}" for _ in range(n_db)]
        lookups0 = authenticator.store_lookups
        refused, per_call = asyncio.run(_send(authenticator, hexes))
        lookups = authenticator.store_lookups - lookups0
        details.append(
            f"| 32 hex, one key imported | {len(hexes):,} | {refused:,} | {lookups:,} | "
            f"| {per_call:.1f} |"
        )
        results.append(
            Result(
                NAME,
                "DB queries: 32 hex, one key imported",
                lookups,
                "",
                note=f"{len(hexes):,} sent: one lookup each, {per_call:.0f} µs each",
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


def _rps(runs) -> float:
    return sum(r.requests for r in runs) / sum(r.seconds for r in runs)


class _Floods:
    """One server: valid traffic alone, and beside floods, in alternating rounds."""

    def __init__(self, server, pat: str, duration: float) -> None:
        use_wrk = loadgen.wrk_path() is not None
        self.valid_c = VALID_CONNECTIONS if use_wrk else PYTHON_VALID_CONNECTIONS
        self.flood_c = FLOOD_CONNECTIONS if use_wrk else PYTHON_FLOOD_CONNECTIONS
        self.url = f"{server.http_url}/v2/myscopes"
        self.headers = {"authorization": "Key " + pat}
        self.pid = server.process.pid
        self.duration = duration
        self.timeout = duration + 30

    def valid(self):
        return loadgen.start_http(
            self.url,
            duration=self.duration,
            connections=self.valid_c,
            headers=self.headers,
            server_pid=self.pid,
        )

    def garbage_alone(self, secrets_file):
        return loadgen.start_http(
            self.url,
            duration=self.duration,
            connections=self.valid_c,
            secrets_file=secrets_file,
            server_pid=self.pid,
        ).wait(self.timeout)

    def with_flood(self, secrets_file):
        # The flood starts 0.5 s before and ends ~0.5 s after the valid window; its rate is
        # averaged over its whole run (a little above the rate during it).
        flooding = loadgen.start_http(
            self.url,
            duration=self.duration + 1,
            connections=self.flood_c,
            secrets_file=secrets_file,
        )
        time.sleep(0.5)
        measured = self.valid().wait(self.timeout)
        return measured, flooding.wait(self.timeout)

    def rounds(self, rounds: int, floods: list) -> tuple[list, list[list]]:
        self.valid().wait(self.timeout)  # warm-up
        alone: list = []
        flooded: list[list] = [[] for _ in floods]
        for _ in range(rounds):
            alone.append(self.valid().wait(self.timeout))
            for runs, secrets_file in zip(flooded, floods, strict=True):
                runs.append(self.with_flood(secrets_file))
        return alone, flooded


def _round_table(details: list[str], alone, flooded, labels: list[str]) -> None:
    details.append(
        "| round | valid req/s alone | "
        + " | ".join(f"valid req/s, {label} flood (flood req/s, flood p50 ms)" for label in labels)
        + " |"
    )
    details.append("| ---: | ---: |" + " ---: |" * len(labels))
    for i, a in enumerate(alone):
        cells = [
            f"{v.rps:,.0f} ({f.rps:,.0f}, {f.p50_us / 1000:,.1f})"
            for v, f in (runs[i] for runs in flooded)
        ]
        details.append(f"| {i + 1} | {a.rps:,.0f} | " + " | ".join(cells) + " |")
    details.append("")


def _cpu_per_request(runs) -> float | None:
    if any(r.server_cpu_seconds is None for r in runs):
        return None
    return sum(r.server_cpu_seconds for r in runs) / sum(r.requests for r in runs) * 1e6


def _drop_row(name: str, alone, runs, target: bool) -> Result:
    base = _rps(alone)
    valid_rps = _rps([v for v, _ in runs])
    flood_rps = _rps([f for _, f in runs])
    drop = 1 - valid_rps / base
    displaced = (base - valid_rps) / flood_rps if flood_rps else float("nan")
    refused = sum(v.non_ok + v.errors for v, _ in runs)
    drops = sorted(1 - v.rps / base for v, _ in runs)
    # Server CPU per valid request, flood work included: what the drop would be on a server
    # that is CPU-bound and alone on its cores (less sensitive to other load on the host).
    cpu_alone, cpu_flooded = _cpu_per_request(alone), _cpu_per_request([v for v, _ in runs])
    cpu_note = ""
    if cpu_alone and cpu_flooded:
        cpu_note = (
            f"; server CPU per valid request {cpu_alone:.0f} → {cpu_flooded:.0f} µs "
            f"(CPU-bound drop {(1 - cpu_alone / cpu_flooded) * 100:.1f}%)"
        )
    return Result(
        NAME,
        name,
        f"{drop * 100:.1f}%",
        "",
        f"<= {TARGET_DROP * 100:.0f}%" if target else "",
        (drop <= TARGET_DROP) if target else None,
        f"{base:,.0f} → {valid_rps:,.0f} req/s with {flood_rps:,.0f} garbage req/s; "
        f"{displaced:.2f} valid requests lost per garbage request; per round "
        f"{drops[0] * 100:.0f}..{drops[-1] * 100:.0f}%; valid requests refused: {refused}"
        + cpu_note,
    )


def _part_b(options, results: list[Result], details: list[str]) -> None:
    duration = 1.5 if options.quick else 3.0
    rounds = 2 if options.quick else 4
    rng = random.Random(13)
    with temp_dir("sg-bench-flood-") as data_dir:
        invalid_file = data_dir / "garbage-invalid.txt"
        forged_file = data_dir / "garbage-forged.txt"
        kinds = garbage_kinds(50_000, rng)
        _write_lines(invalid_file, kinds["checksum-invalid (one checksum char changed)"])
        _write_lines(forged_file, kinds["forged: valid checksum, unknown"])

        # B1: the server as shipped; failed authentications are throttled per address.
        server = start_server(data_dir / "server")
        try:
            floods = _Floods(server, server.create_user("bench"), duration)
            log(f"{NAME}: REST, throttle on, {rounds} rounds x (alone, invalid, forged flood)")
            alone, (invalid, forged) = floods.rounds(rounds, [invalid_file, forged_file])
        finally:
            stop_server(server)

        # B2: throttle off: what each refusal costs, and a flood the throttle does not see.
        server = start_server(data_dir / "server-off", {"SCOPEGATE_AUTH_FAILURE_LIMIT": "0"})
        try:
            off = _Floods(server, server.create_user("bench"), duration)
            log(f"{NAME}: REST, throttle off, cost per request and {rounds - 1} flood rounds")
            off.valid().wait(off.timeout)
            garbage_cost = off.garbage_alone(invalid_file)
            forged_cost = off.garbage_alone(forged_file)
            off_alone, (off_invalid,) = off.rounds(max(1, rounds - 1), [invalid_file])
        finally:
            stop_server(server)

    details.append(
        f"Part B, real server over REST ({alone[0].tool}): valid `MyScopes` from "
        f"{floods.valid_c} keep-alive connections; floods from {floods.flood_c} more "
        "connections, each request a different garbage secret. All from 127.0.0.1."
    )
    details.append("")
    details.append(
        "B1, the server's defaults: past 50 failed authentications a minute from an address, "
        "each further failure is answered `CONN_THROTTLED` after 1 s."
    )
    details.append("")
    _round_table(details, alone, [invalid, forged], ["invalid", "forged"])
    details.append(
        "B2, throttle off (`SCOPEGATE_AUTH_FAILURE_LIMIT=0`): every garbage request answered "
        "at once."
    )
    details.append("")
    _round_table(details, off_alone, [off_invalid], ["invalid"])

    results.append(_drop_row("valid req/s drop under checksum-invalid flood", alone, invalid, True))
    results.append(_drop_row("valid req/s drop under forged-secret flood", alone, forged, False))
    results.append(
        _drop_row(
            "throttle off: valid req/s drop under checksum-invalid flood",
            off_alone,
            off_invalid,
            False,
        )
    )
    for label, value in (
        (
            "valid MyScopes",
            sum(r.server_cpu_us_per_request or 0 for r in off_alone) / len(off_alone),
        ),
        ("checksum-invalid garbage", garbage_cost.server_cpu_us_per_request),
        ("forged garbage", forged_cost.server_cpu_us_per_request),
    ):
        if value:
            results.append(
                Result(
                    NAME,
                    f"server CPU per request: {label}",
                    value,
                    "µs",
                    note="throttle off, saturating the server with that traffic alone",
                )
            )


def run(options) -> tuple[list[Result], list[str]]:
    results: list[Result] = []
    details: list[str] = []
    log(f"{NAME}: in-process garbage kinds")
    _part_a(options, results, details)
    _part_b(options, results, details)
    return results, details
