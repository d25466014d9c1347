"""The operator's side of a running server, assembled: metrics and the access log as
observers of the dispatcher, `GET /metrics` (on the HTTP port, or on an address of its own),
`GET /readyz`, and the gRPC health service following readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn
from grpc_health.v1 import health_pb2
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scopegate.access.invalidation import ChangeWatcher
from scopegate.contract.catalog import SERVICE_NAME
from scopegate.dispatch import Dispatcher
from scopegate.observability.access_log import AccessLog
from scopegate.observability.metrics import Metrics
from scopegate.observability.readiness import Readiness, database_check
from scopegate.observability.settings import ObservabilitySettings
from scopegate.transports.sockets import bind_tcp

log = logging.getLogger("scopegate.observability")


class _MetricsServer(uvicorn.Server):
    """Signals are the main server's to handle."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class Operations:
    def __init__(self, settings: ObservabilitySettings, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.metrics = Metrics() if settings.metrics else None
        self.readiness = Readiness()
        self.readiness.add("database", database_check(dispatcher.services.engine))
        redis = dispatcher.limiter.redis  # rate limits shared through Redis, when configured
        if redis is not None:
            # Required only when limited requests are refused without it (`closed`).
            self.readiness.add("redis", redis.ping, required=not redis.fail_open)
        self._tasks: list[asyncio.Task] = []
        self._metrics_server: uvicorn.Server | None = None
        metrics = self.metrics
        if metrics is not None:
            dispatcher.observers.append(metrics)
            authenticator, relations = dispatcher.authenticator, dispatcher.relations
            metrics.watch_cache(
                "authentication", authenticator, lambda: authenticator.store_lookups
            )
            metrics.watch_cache("relations", relations, lambda: relations.store_lookups)
            decisions = dispatcher.decisions
            metrics.watch_cache("decisions", decisions, lambda: decisions.misses)
            metrics.watch_database(dispatcher.services.engine)
            forwarded = (name for name, handler in dispatcher.handlers.items() if handler.awaits)
            metrics.watch_upstream(frozenset(forwarded))
        dispatcher.observers.append(AccessLog())  # nearly free when the level is above INFO

    def watch_change_log(self, watcher: ChangeWatcher) -> None:
        if self.metrics is not None:
            self.metrics.watch_change_log(watcher)

    def http_routes(self) -> list[Route]:
        """/readyz, and /metrics unless it has an address of its own."""
        routes = [Route("/readyz", self.readyz, methods=["GET"])]
        if self.metrics is not None and self.settings.metrics_address is None:
            routes.append(Route("/metrics", self.scrape, methods=["GET"]))
        return routes

    async def readyz(self, _request: Request) -> JSONResponse:
        ready, failing = await self.readiness.check()
        if ready and not failing:
            return JSONResponse({"status": "ready"})
        if ready:  # only what it may serve without failed
            return JSONResponse({"status": "degraded", "failing": failing})
        return JSONResponse({"status": "not ready", "failing": failing}, status_code=503)

    async def scrape(self, _request: Request) -> Response:
        assert self.metrics is not None
        # With several workers this reads every worker's files: off the event loop.
        body = await asyncio.to_thread(self.metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def start(self, health) -> str | None:
        """Follow readiness in the gRPC health service (`health`: its servicer), keep the
        metrics current, serve the metrics address; the address served, if any."""

        async def follow(ready: bool) -> None:
            status = health_pb2.HealthCheckResponse.SERVING if ready else None
            status = status or health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ("", SERVICE_NAME):
                await health.set(name, status)

        self.readiness.listeners.append(follow)
        await self.readiness.check()
        self._tasks.append(asyncio.create_task(self.readiness.watch()))
        metrics = self.metrics
        if metrics is None:
            return None
        if metrics.multiprocess:
            self._tasks.append(asyncio.create_task(metrics.sync_every()))
        if self.settings.metrics_address is None:
            return None
        return await self._serve_metrics(self.settings.metrics_address, metrics.multiprocess)

    async def _serve_metrics(self, address: tuple[str, int], shared: bool) -> str:
        host, port = address
        # shared: every worker serves the same address; any one answers for all.
        sock = bind_tcp(host, port, "cannot serve metrics on", reuse_port=shared)
        sock.listen(128)
        app = Starlette(routes=[Route("/metrics", self.scrape, methods=["GET"])])
        server = _MetricsServer(
            uvicorn.Config(app, lifespan="off", access_log=False, log_config=None)
        )
        self._metrics_server = server
        self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not server.started:
            if self._tasks[-1].done():
                raise OSError(f"cannot serve metrics on {host}:{port}")
            await asyncio.sleep(0.01)
        bound = sock.getsockname()
        return f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}/metrics"

    async def stop(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.should_exit = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
