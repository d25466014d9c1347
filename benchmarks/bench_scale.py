"""3. Verification latency with 1,000 and with 1,000,000 keys stored (SQLite).

Cold: the authenticator's cache is emptied before each call, so every call is a database
query (in a worker thread, as the server does it). Warm: every known key already cached.
The two databases are measured side by side, in alternating batches.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time

from benchmarks import keystore
from benchmarks.common import Result, log, open_services, summarize_ns

NAME = "3. lookup latency 1k vs 1M keys"
TARGET_RATIO = 1.2
SMALL = 1_000


def _prime_os_cache(path) -> None:
    """Read the database file once so both sizes start from the OS page cache, not disk."""
    with open(path, "rb") as handle:
        while handle.read(8 << 20):
            pass


class _Size:
    def __init__(self, label: str, store: keystore.KeyStore) -> None:
        from scopegate.access.authentication import Authenticator

        self.label = label
        self.store = store
        self.services = open_services(store.data_dir)
        self.authenticator = Authenticator(self.services.engine, self.services.hasher)
        self.cold: list[int] = []
        self.warm: list[int] = []
        self.query: list[int] = []
        self.miss: list[int] = []


async def _cold_batch(size: _Size, secrets: list[str]) -> None:
    authenticator, clock = size.authenticator, time.perf_counter_ns
    for secret in secrets:
        authenticator.evict_all()
        header = "Key " + secret
        started = clock()
        await authenticator.authenticate(header)
        size.cold.append(clock() - started)


async def _miss_batch(size: _Size, secrets: list[str]) -> None:
    from scopegate.contract.status import ApiError

    authenticator, clock = size.authenticator, time.perf_counter_ns
    for secret in secrets:
        header = "Key " + secret
        started = clock()
        try:
            await authenticator.authenticate(header)
        except ApiError:
            pass
        else:
            raise RuntimeError("an invented secret was accepted")
        size.miss.append(clock() - started)


async def _warm_batch(size: _Size, secrets: list[str]) -> None:
    authenticator, clock = size.authenticator, time.perf_counter_ns
    for secret in secrets:
        header = "Key " + secret
        started = clock()
        await authenticator.authenticate(header)
        size.warm.append(clock() - started)


def _query_batch(size: _Size, secrets: list[str]) -> None:
    """The store query alone, on this thread: what the database itself adds."""
    from scopegate.store import keys
    from scopegate.store.records import now

    digest, clock = size.services.hasher.digest, time.perf_counter_ns
    with size.services.engine.connect() as conn:
        for secret in secrets:
            d = digest(secret)
            started = clock()
            record = keys.find_by_digest(conn, d, now())
            size.query.append(clock() - started)
            if record is None:
                raise RuntimeError("a known key was not found")


def _forged(count: int) -> list[str]:
    """Well-formed, checksum-valid secrets that no database holds."""
    factory = keystore._secret_factory(random.Random())
    return [factory() for _ in range(count)]


async def _measure(sizes: list[_Size], passes: int, warm_n: int, batch: int) -> None:
    rng = random.Random(7)
    # Warm-up: one unmeasured pass each (code paths, pool connections, SQLite pages).
    for size in sizes:
        await _cold_batch(size, size.store.known[:200])
        _query_batch(size, size.store.known[:200])
        size.cold.clear()
        size.query.clear()
    order_cold = []
    for size in sizes:
        known = list(size.store.known)
        for _ in range(passes):
            rng.shuffle(known)
            order_cold.extend((size, known[i : i + batch]) for i in range(0, len(known), batch))
    # Interleave batches of the two sizes: s1 b1, s2 b1, s1 b2, s2 b2, ...
    by_size = {id(s): [item for item in order_cold if item[0] is s] for s in sizes}
    interleaved = [pair for group in zip(*by_size.values(), strict=False) for pair in group]
    gc.disable()
    try:
        for size, secrets in interleaved:
            await _cold_batch(size, secrets)
        for size, secrets in interleaved:
            _query_batch(size, secrets)
        forged = {id(s): _forged(len(s.store.known)) for s in sizes}
        for start in range(0, len(sizes[0].store.known), batch):
            for size in sizes:
                await _miss_batch(size, forged[id(size)][start : start + batch])
        for size in sizes:  # warm: load every known key
            for secret in size.store.known:
                await size.authenticator.authenticate("Key " + secret)
        for _ in range(max(1, warm_n // batch)):
            for size in sizes:
                await _warm_batch(size, rng.choices(size.store.known, k=batch))
    finally:
        gc.enable()


def run(options) -> tuple[list[Result], list[str]]:
    large_total = options.keys
    results: list[Result] = []
    details: list[str] = []
    small_store = keystore.key_store(SMALL, rebuild=options.rebuild)
    try:
        large_store = keystore.key_store(large_total, rebuild=options.rebuild)
    except TimeoutError as exc:
        results.append(
            Result(NAME, f"build {large_total:,} keys", "timeout", "", "<= ~120 s", False, str(exc))
        )
        return results, details
    build_note = (
        f"reused from cache (built in {large_store.build_seconds:.0f}s)"
        if large_store.reused
        else "built this run"
    )
    results.append(
        Result(
            NAME,
            f"build {large_total:,} keys",
            large_store.build_seconds,
            "s",
            "<= 120",
            large_store.build_seconds <= 120,
            build_note,
        )
    )
    for store in (small_store, large_store):
        _prime_os_cache(store.data_dir / "scopegate.db")
    sizes = [_Size(f"{SMALL:,}", small_store), _Size(f"{large_total:,}", large_store)]
    passes = 1 if options.quick else 5
    warm_n = 5_000 if options.quick else 20_000
    log(f"{NAME}: {passes} cold passes over {len(small_store.known):,} known keys per size")
    try:
        asyncio.run(_measure(sizes, passes, warm_n, batch=100))
    finally:
        for size in sizes:
            size.services.engine.dispose()
    small, large = sizes
    table = {}
    for kind, label in (
        ("cold", "cold authenticate (cache miss → DB)"),
        ("query", "store query alone (find_by_digest)"),
        ("miss", "unknown well-formed secret (DB miss)"),
        ("warm", "warm authenticate (cache hit)"),
    ):
        s_small, s_large = summarize_ns(getattr(small, kind)), summarize_ns(getattr(large, kind))
        table[kind] = (label, s_small, s_large)
        ratio = s_large["p99_us"] / s_small["p99_us"]
        is_target = kind in ("cold", "warm")
        results.append(
            Result(
                NAME,
                f"{kind}: p99 {small.label} / {large.label} keys",
                f"{s_small['p99_us']:.1f} / {s_large['p99_us']:.1f}",
                "µs",
                note=f"p50 {s_small['p50_us']:.1f} / {s_large['p50_us']:.1f} µs",
            )
        )
        results.append(
            Result(
                NAME,
                f"{kind}: p99 ratio 1M/1k"
                if large_total == 1_000_000
                else f"{kind}: p99 ratio {large.label}/{small.label}",
                ratio,
                "",
                f"<= {TARGET_RATIO}" if is_target else "",
                (ratio <= TARGET_RATIO) if is_target else None,
            )
        )
    details.append(
        f"Databases: {small.label} keys ({small_store.file_bytes / 1e6:.1f} MB) and "
        f"{large.label} keys ({large_store.file_bytes / 1e6:.0f} MB, {build_note}); "
        "both files read once beforehand so they start in the OS page cache."
    )
    details.append("")
    details.append("| measurement | keys | n | p50 µs | p90 µs | p99 µs | p99.9 µs | mean µs |")
    details.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, s_small, s_large in table.values():
        for size_label, s in ((small.label, s_small), (large.label, s_large)):
            details.append(
                f"| {label} | {size_label} | {s['n']:,} | {s['p50_us']:.1f} | "
                f"{s['p90_us']:.1f} | {s['p99_us']:.1f} | {s['p999_us']:.1f} | "
                f"{s['mean_us']:.1f} |"
            )
    details.append("")
    return results, details
