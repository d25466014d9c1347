"""1. In-process authenticate + authorize on a warm cache, per request, in microseconds."""

from __future__ import annotations

import asyncio
import gc
import time

from benchmarks.common import Result, log, open_services, sign_up, summarize_ns, temp_dir
from scopegate.auth.policy import Relation, needs_lookup

NAME = "1. in-process auth"


def relation_of(principal, target):
    """As the dispatcher decides it: a caller's own resources need no lookup."""
    if needs_lookup(principal, target):
        raise ValueError("the benchmark authorizes callers on their own resources only")
    return Relation.OWNER


async def _time_requests(authenticator, header, spec, app_id, iterations, warmup):
    from scopegate.auth.policy import authorize, resolve_target

    clock = time.perf_counter_ns
    samples = [0] * iterations
    for _ in range(warmup):
        principal = await authenticator.authenticate(header)
        target = resolve_target(principal, "me", app_id)
        authorize(principal, spec, target, relation_of(principal, target))
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one sample is noise for this measurement, not auth
    try:
        for i in range(iterations):
            started = clock()
            principal = await authenticator.authenticate(header)
            target = resolve_target(principal, "me", app_id)
            decision = authorize(principal, spec, target, relation_of(principal, target))
            samples[i] = clock() - started
            if not decision.allowed:
                raise RuntimeError(f"{spec.name} was refused: {decision.error}")
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def _component_costs(services, authenticator, pat: str, spec) -> dict[str, float]:
    """Mean ns of each step of the warm path, to see where the microseconds go."""
    from scopegate.access.authentication import secret_from_header
    from scopegate.auth import tokens
    from scopegate.auth.policy import authorize, resolve_target

    header = "Key " + pat
    principal = next(iter(authenticator._cache.values())).principal
    steps = {
        "secret_from_header": lambda: secret_from_header(header),
        "tokens.parse (checksum)": lambda: tokens.parse(pat),
        "hasher.digest (HMAC-SHA-256)": lambda: services.hasher.digest(pat),
    }
    if principal is not None:
        relation = relation_of(principal, resolve_target(principal, "me", "bench-app"))
        steps["resolve_target + authorize"] = lambda: authorize(
            principal, spec, resolve_target(principal, "me", "bench-app"), relation
        )
    costs = {}
    for name, fn in steps.items():
        n = 50_000
        for _ in range(1000):
            fn()
        started = time.perf_counter_ns()
        for _ in range(n):
            fn()
        costs[name] = (time.perf_counter_ns() - started) / n / 1000
    return costs


def run(options) -> tuple[list[Result], list[str]]:
    from scopegate.access.authentication import Authenticator

    iterations = 10_000 if options.quick else 50_000
    results: list[Result] = []
    details: list[str] = []
    with temp_dir("sg-bench-inproc-") as data_dir:
        services = open_services(data_dir)
        pat = sign_up(services, "bench")
        authenticator = Authenticator(services.engine, services.hasher)
        header = "Key " + pat
        rows = []
        for spec_name, app_id in (("MyScopes", ""), ("GetApp", "bench-app")):
            spec = services.catalog.method(spec_name)
            log(f"{NAME}: {iterations:,} x authenticate + authorize({spec_name})")
            samples = asyncio.run(
                _time_requests(authenticator, header, spec, app_id, iterations, 5_000)
            )
            stats = summarize_ns(samples)
            rows.append((spec_name, stats))
            for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
                results.append(
                    Result(
                        NAME,
                        f"{spec_name}: {label} per request",
                        stats[key],
                        "µs",
                        note=f"n={stats['n']:,}, warm cache, PAT",
                    )
                )
        lookups = authenticator.store_lookups
        costs = _component_costs(services, authenticator, pat, services.catalog.method("GetApp"))
        services.engine.dispose()

    details.append("| spec | n | p50 µs | p90 µs | p99 µs | p99.9 µs | mean µs |")
    details.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for spec_name, s in rows:
        details.append(
            f"| {spec_name} | {s['n']:,} | {s['p50_us']:.2f} | {s['p90_us']:.2f} | "
            f"{s['p99_us']:.2f} | {s['p999_us']:.2f} | {s['mean_us']:.2f} |"
        )
    details.append("")
    details.append(f"Database lookups during the run: {lookups} (the first call only).")
    details.append("")
    details.append("Mean cost of the warm path's steps (µs per call, tight loop):")
    details.append("")
    for name, cost in costs.items():
        details.append(f"- {name}: {cost:.2f}")
    return results, details
