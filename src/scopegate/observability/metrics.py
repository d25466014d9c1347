"""Prometheus metrics: what every request came to, the caches, the change log, the database.

An observer of the dispatcher (`Metrics.observe`), so every request on every transport is
counted in one place, refusals the transports make before dispatch included. The hot path
costs a dictionary lookup for the label children (resolved once per method, transport and
code, then kept) and a few increments; the caches count their hits and misses in plain
integers (access/), which `sync` turns into counters when scraped, and every second with
several workers.

Several workers (`serve --workers`): when PROMETHEUS_MULTIPROC_DIR names a directory, every
value lives in a file there (prometheus_client's multiprocess mode) and a scrape answered by
any worker adds up all of them (`exposition`). The supervisor creates the directory afresh,
sets the variable for its workers and calls `prometheus_client.multiprocess.mark_process_dead`
when one exits.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from clarifai_grpc.grpc.api.status import status_code_pb2
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event

from scopegate.contract.catalog import NO_AUTH
from scopegate.contract.status import C, http_status
from scopegate.dispatch import Outcome

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SYNC_SECONDS = 1.0  # how often, with several workers, the plain counts reach the files
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# How authentication and authorization ended, by kind (`auth_outcome`).
ALLOWED, MALFORMED, INVALID, EXPIRED = "allowed", "malformed", "invalid", "expired"
INSUFFICIENT_SCOPES, NOT_VISIBLE, THROTTLED, OTHER = (
    "insufficient_scopes",
    "not_visible",
    "throttled",
    "other",
)
AUTH_OUTCOMES = (ALLOWED, MALFORMED, INVALID, EXPIRED, INSUFFICIENT_SCOPES, NOT_VISIBLE, THROTTLED)
EXPIRED_DETAILS = "This key expired"  # access/authentication.py's words for an expired key


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


_CODE_NAMES = {v.number: v.name for v in status_code_pb2.StatusCode.DESCRIPTOR.values}


def code_name(code: int) -> str:
    """A status code's name (SUCCESS, CONN_KEY_INVALID, ...), its number if unknown."""
    name = _CODE_NAMES.get(code)
    return name if name is not None else str(code)


def auth_outcome(outcome: Outcome) -> str | None:
    """How authentication and authorization ended for a request to a method that needs
    credentials; None for NoAuth methods and requests refused before either looked."""
    stage = outcome.stage
    if outcome.call.spec.auth_type is NO_AUTH or stage == "request":
        return None
    error = outcome.error
    if error is None or stage == "handler":
        return ALLOWED
    code = error.code
    if code == C.CONN_THROTTLED:
        return THROTTLED
    if stage == "authentication":
        if code == C.CONN_INVALID_REQUEST:
            return MALFORMED  # missing, malformed or repeated header
        if error.details.startswith(EXPIRED_DETAILS):
            return EXPIRED
        return INVALID
    if code == C.CONN_INSUFFICIENT_SCOPES:
        return INSUFFICIENT_SCOPES
    if code == C.CONN_DOES_NOT_EXIST:
        return NOT_VISIBLE
    if code == C.CONN_KEY_INVALID:
        return INVALID  # an API key naming another app
    return OTHER


def http_status_of(outcome: Outcome) -> int | None:
    """The HTTP status a REST answer carried (None on other transports): an in-band failure
    a handler answers is still a 200, as the REST transport renders it."""
    if outcome.call.transport != "rest":
        return None
    error = outcome.error
    if error is None:
        return 200
    return error.http_status or http_status(error.code)


class CacheCounts(Protocol):
    hits: int


class Metrics:
    """The server's metrics, in a registry of their own (several servers may share a
    process in tests); with PROMETHEUS_MULTIPROC_DIR set, in that directory's files."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        if self.multiprocess and values.ValueClass is values.MutexValue:
            # The variable was set after prometheus_client was imported: values go to files.
            values.ValueClass = values.get_value_class()
        disable_created_metrics()  # no `_created` series beside every counter: noise here
        self.registry = registry = CollectorRegistry()
        if not self.multiprocess:  # not meaningful summed over workers
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        # Every metric lives in this registry, and every latency histogram has the same buckets.
        counter = functools.partial(Counter, registry=registry)
        latency_histogram = functools.partial(Histogram, registry=registry, buckets=LATENCY_BUCKETS)
        self.requests = counter(
            "scopegate_requests",
            "Requests answered, by transport, method and Clarifai status code.",
            ["transport", "method", "code"],
        )
        self.latency = latency_histogram(
            "scopegate_request_duration_seconds",
            "Time from a transport taking a request to its answer being made.",
            ["transport", "method"],
        )
        self.auth = counter(
            "scopegate_auth_outcomes",
            "How authentication and authorization ended, for methods that need credentials.",
            ["outcome"],
        )
        self.cache = counter(
            "scopegate_cache_requests",
            "Lookups in the request-time caches, answered from memory (hit) or not (miss).",
            ["cache", "result"],
        )
        self.db_queries = counter(
            "scopegate_db_queries",
            "SQL statements sent to the database, by kind.",
            ["statement"],
        )
        self.db_errors = counter("scopegate_db_errors", "SQL statements that failed.")
        self.change_log_lag = Gauge(
            "scopegate_change_log_lag_seconds",
            "Seconds since this process last read the change log (the worst live worker's).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.change_log_applied = counter(
            "scopegate_change_log_applied",
            "Changes made by other processes applied to this one's caches.",
        )
        self.change_log_failures = counter(
            "scopegate_change_log_poll_failures",
            "Reads of the change log that failed (the database did not answer).",
        )
        # Upstream calls: unary calls handed to forwarding (serve --upstream), counted from
        # their outcomes (`watch_upstream`); `observe_upstream` is for forwarding code to
        # report calls of its own (streams).
        self.upstream_requests = counter(
            "scopegate_upstream_requests",
            "Calls forwarded upstream, by method and the status code answered.",
            ["method", "code"],
        )
        self.upstream_latency = latency_histogram(
            "scopegate_upstream_duration_seconds",
            "Time from a transport taking a forwarded call to its answer being made.",
            ["method"],
        )
        # Label children, resolved once: (transport, spec, code) -> (count, latency, and
        # for a forwarded method the upstream count and latency, else None).
        self._children: dict[tuple[str, Any, int], tuple[Any, Any, Any, Any]] = {}
        self._forwarded: frozenset[str] = frozenset()
        self._auth_children = {kind: self.auth.labels(kind) for kind in (*AUTH_OUTCOMES, OTHER)}
        for kind in AUTH_OUTCOMES:  # every kind shows from the start, at 0
            self._auth_children[kind].inc(0)
        self._caches: list[tuple[str, CacheCounts, Callable[[], int]]] = []
        self._synced: dict[tuple[str, str], int] = {}
        # A scrape syncs in a worker thread while the loop may sync too (several workers).
        self._sync_lock = threading.Lock()
        self._watcher: Any = None

    # -- the hot path --------------------------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        call = outcome.call
        key = (call.transport, call.spec, outcome.code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._resolve(key)
        children[0].inc()
        seconds = outcome.finished - outcome.started
        children[1].observe(seconds)
        if children[2] is not None and outcome.stage == "handler":  # handed to forwarding
            children[2].inc()
            children[3].observe(seconds)
        kind = auth_outcome(outcome)
        if kind is not None:
            self._auth_children[kind].inc()

    def _resolve(self, key: tuple[str, Any, int]) -> tuple[Any, Any, Any, Any]:
        transport, spec, code = key
        transport = transport or "internal"
        forwarded = spec.name in self._forwarded
        return (
            self.requests.labels(transport, spec.name, code_name(code)),
            self.latency.labels(transport, spec.name),
            self.upstream_requests.labels(spec.name, code_name(code)) if forwarded else None,
            self.upstream_latency.labels(spec.name) if forwarded else None,
        )

    # -- what is read when scraped -------------------------------------------------------

    def watch_cache(self, name: str, cache: CacheCounts, misses: Callable[[], int]) -> None:
        """Count `cache.hits` and `misses()` as cache `name`'s hits and misses."""
        self._caches.append((name, cache, misses))
        for result in ("hit", "miss"):
            self.cache.labels(name, result).inc(0)

    def watch_change_log(self, watcher: Any) -> None:
        """The change watcher (access/invalidation.py): its last poll, changes applied and
        failed polls."""
        self._watcher = watcher

    def watch_database(self, engine: Engine) -> None:
        """Count the engine's statements by kind, and its failures."""
        by_kind = {
            kind: self.db_queries.labels(kind.lower())
            for kind in ("SELECT", "INSERT", "UPDATE", "DELETE")
        }
        other = self.db_queries.labels("other")
        errors = self.db_errors

        def before(_conn, _cursor, statement: str, *_args) -> None:
            by_kind.get(statement[:6].upper(), other).inc()

        def failed(_context) -> None:
            errors.inc()

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "handle_error", failed)

    def watch_upstream(self, forwarded: frozenset[str]) -> None:
        """The methods whose dispatcher handler forwards them upstream."""
        self._forwarded = forwarded
        self._children.clear()

    def observe_upstream(self, method: str, code: int, seconds: float) -> None:
        """One call forwarded upstream: for the forwarding code to report."""
        self.upstream_requests.labels(method, code_name(code)).inc()
        self.upstream_latency.labels(method).observe(seconds)

    def sync(self) -> None:
        """Add what the plain counts gained since the last sync to the counters."""
        with self._sync_lock:
            self._sync()

    def _sync(self) -> None:
        for name, cache, misses in self._caches:
            for result, now in (("hit", cache.hits), ("miss", misses())):
                self._advance((name, result), self.cache.labels(name, result), now)
        watcher = self._watcher
        if watcher is not None:
            if watcher.last_poll:
                self.change_log_lag.set(max(0.0, time.time() - watcher.last_poll))
            self._advance(("change_log", "applied"), self.change_log_applied, watcher.applied)
            self._advance(
                ("change_log", "failures"), self.change_log_failures, watcher.poll_failures
            )

    def _advance(self, key: tuple[str, str], counter: Counter, now: int) -> None:
        """Add to `counter` what the plain count `key` gained since the last sync."""
        before = self._synced.get(key, 0)
        if now > before:
            counter.inc(now - before)
        self._synced[key] = now

    async def sync_every(self, seconds: float = SYNC_SECONDS) -> None:
        """With several workers, a scrape reads every worker's files: keep them current."""
        while True:
            await asyncio.sleep(seconds)
            self.sync()

    def exposition(self) -> bytes:
        """The text a scrape answers: this process's metrics, or with several workers all
        of theirs, added up."""
        self.sync()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
