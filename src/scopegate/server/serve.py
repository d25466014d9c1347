"""`scopegate serve`: gRPC and REST in one event loop, stopped gracefully by a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Mapping, Sequence

import uvicorn
from grpc_health.v1 import health_pb2
from starlette.types import ASGIApp

from scopegate.access.address_throttle import AuthFailureThrottle
from scopegate.access.authentication import Authenticator
from scopegate.access.invalidation import ChangeWatcher
from scopegate.access.login_throttle import Throttle
from scopegate.access.org_policies import OrgPolicies
from scopegate.access.relations import RelationResolver
from scopegate.context import Services
from scopegate.contract.catalog import SERVICE_NAME
from scopegate.dispatch import Dispatcher, Observer
from scopegate.gateway.decision import ExternalAuthorizer
from scopegate.gateway.ext_authz import EnvoyAuthorization
from scopegate.gateway.forward_auth import ForwardAuth
from scopegate.handlers import Handler, all_handlers
from scopegate.media.downloads import Downloader
from scopegate.observability.operations import Operations
from scopegate.portal import build_portal
from scopegate.server import heap
from scopegate.server.config import AccessSettings, LoginSettings, Settings
from scopegate.server.connections import grpc_options
from scopegate.server.limits import close_limits, install_limits
from scopegate.server.refusal_records import refusal_recorder
from scopegate.server.runtime import open_services, usage_counter
from scopegate.server.upstream import Forwarding
from scopegate.services.login import LoginService
from scopegate.transports.grpc import build_grpc_server
from scopegate.transports.grpc_pipe import PipedPeers
from scopegate.transports.port_switch import port_switch_protocol
from scopegate.transports.rest.app import build_http_app
from scopegate.transports.rest.forwarded import TrustedProxies
from scopegate.transports.rest.http_protocol import deadline_protocol
from scopegate.transports.rest.leak_reports import LeakReports
from scopegate.transports.sockets import bind_tcp

log = logging.getLogger("scopegate.server.serve")
GRACE_SECONDS = 10.0


class _UvicornServer(uvicorn.Server):
    """Signals are ours to handle: one shutdown for both transports."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def build_dispatcher(
    services: Services,
    auth_failures: AuthFailureThrottle | None = None,
    access: AccessSettings | None = None,
    observers: Sequence[Observer] = (),
    forwarded: Mapping[str, Handler] | None = None,
) -> Dispatcher:
    """The dispatcher with its credential and relation caches, which register with the
    services' evictions: a change the services commit leaves them at once."""
    access = access or AccessSettings()
    authenticator = Authenticator(
        services.engine,
        services.hasher,
        ttl_seconds=access.credential_cache_seconds,
        negative_ttl_seconds=access.unknown_secret_cache_seconds,
        evictions=services.evictions,
    )
    relations = RelationResolver(
        services.engine, ttl_seconds=access.relation_cache_seconds, evictions=services.evictions
    )
    handlers = {**all_handlers(), **(forwarded or {})}  # forwarded: over the local ones
    return Dispatcher(
        services, authenticator, handlers, relations, auth_failures, observers=observers
    )


def _login_service(services: Services, login: LoginSettings) -> LoginService:
    window = login.failure_window_seconds
    return LoginService(
        services.engine,
        services.hasher,
        session_seconds=login.session_seconds,
        per_account=Throttle(login.failures_per_account, window),
        per_address=Throttle(login.failures_per_address, window),
        evict=services.evictions.apply,
    )


async def serve(settings: Settings, *, announce=print) -> None:
    services = await asyncio.to_thread(open_services, settings)
    auth_failures = AuthFailureThrottle(
        settings.auth_failure_limit,
        settings.auth_failure_window_seconds,
        settings.auth_failure_delay_seconds,
    )
    usage = usage_counter(settings, services)
    refusals = refusal_recorder(services)  # why requests were refused (access/refusals.py)
    # serve --upstream: methods without a local handler go upstream (server/upstream.py).
    forwarding = None
    if settings.upstream is not None:
        forwarding = Forwarding(settings.upstream, services.catalog, settings.data_dir)
    dispatcher = build_dispatcher(
        services,
        auth_failures,
        settings.access,
        observers=[o for o in (usage, refusals) if o is not None],
        forwarded=forwarding.handlers() if forwarding else None,
    )
    install_limits(dispatcher, settings.limits)
    # Organizations' token policies, checked after authorization (access/org_policies.py).
    dispatcher.org_policies = OrgPolicies(services.engine, services.evictions)
    await asyncio.to_thread(dispatcher.org_policies.load_all)
    # Metrics and the access log observe the dispatcher; /readyz and gRPC health follow
    # the database and Redis (installed just above) (observability/).
    operations = Operations(settings.observability, dispatcher)
    downloader = Downloader(services.engine, services.media)
    services.schedule_download = downloader.schedule

    tls = settings.tls
    limits = settings.connections
    one_port = settings.port is not None
    worker = settings.worker  # under `serve --workers`: ports shared (server/workers.py)
    http_socket = _bind(
        settings.host,
        settings.http_port if settings.port is None else settings.port,
        reuse_port=worker is not None,
    )
    # One port: gRPC listens on loopback only and the port's gRPC connections are piped
    # to it (transports/port_switch.py), already decrypted when the port speaks TLS.
    peers = PipedPeers()
    try:
        grpc_server, grpc_port = build_grpc_server(
            dispatcher,
            services.catalog,
            "127.0.0.1:0" if one_port else f"{settings.host}:{settings.grpc_port}",
            tls=(tls.private_key, tls.cert_chain) if tls and not one_port else None,
            options=grpc_options(settings.connections),
            peer_of=peers,  # empty, so every peer as it is, with two ports
            trusted_proxies=limits.trusted_proxies,
            reuse_port=worker is not None and not one_port,
            wrap=forwarding.grpc_wrap(dispatcher, peers) if forwarding else None,
        )
    except OSError:
        http_socket.close()
        raise
    http_port = http_socket.getsockname()[1]
    # Other proxies' authorization questions: Envoy's Check on the gRPC port, forward auth
    # on the HTTP port (gateway/).
    authorizer = ExternalAuthorizer(dispatcher, services.catalog)
    envoy = EnvoyAuthorization(authorizer, peers, limits.trusted_proxies)
    grpc_server.add_generic_rpc_handlers((envoy.generic_handler(),))
    login = _login_service(services, settings.login)
    portal = build_portal(dispatcher, login)
    # Leaked-secret reports from GitHub and GitLab (transports/rest/leak_reports.py).
    leak_reports = LeakReports.from_environment(services).routes()
    app: ASGIApp = build_http_app(
        dispatcher, services.catalog, login, portal, [*operations.http_routes(), *leak_reports]
    )
    app = ForwardAuth(app, authorizer)
    if forwarding is not None:
        app = forwarding.http_app(app)  # GET /.well-known/jwks.json with signed assertions
    if limits.trusted_proxies:
        app = TrustedProxies(app, limits.trusted_proxies)
    protocol: type[asyncio.Protocol] = deadline_protocol(limits.http_request_timeout)
    if one_port:
        protocol = port_switch_protocol(
            protocol, ("127.0.0.1", grpc_port), peers, limits.http_request_timeout
        )
    http = _UvicornServer(
        uvicorn.Config(
            app,
            http=protocol,
            # Forwarding headers are ours to judge (TrustedProxies): uvicorn's default
            # believes any X-Forwarded-For sent from 127.0.0.1.
            proxy_headers=False,
            timeout_keep_alive=limits.http_keep_alive,  # type: ignore[arg-type]
            limit_concurrency=limits.http_max_connections,
            lifespan="off",
            access_log=False,  # ours is an observer of the dispatcher (access_log.py)
            log_config=None,  # uvicorn's loggers go through ours (observability/logs.py)
            log_level="warning",
            server_header=False,
            ssl_certfile=tls.cert_file if tls else None,
            ssl_keyfile=tls.key_file if tls else None,
        )
    )
    watcher = ChangeWatcher(
        services.engine,
        dispatcher.authenticator,
        dispatcher.relations,
        poll_seconds=settings.access.change_poll_seconds,
        last_used_seconds=settings.access.last_used_write_seconds,
        flushers=[o.flush for o in (usage, refusals) if o is not None],
    )
    watcher.also.append(dispatcher.org_policies)
    operations.watch_change_log(watcher)
    await asyncio.to_thread(watcher.start_position)
    if not worker:  # one process resumes pending downloads, not every worker
        await asyncio.to_thread(downloader.resume)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    heap.settle()  # everything is built: take it out of the collector's way
    await grpc_server.start()
    health = grpc_server.health_servicer
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics_url = await operations.start(health)  # health: SERVING while the database answers
    http_task = asyncio.create_task(http.serve(sockets=[http_socket]))
    watcher_task = asyncio.create_task(watcher.run())
    while not http.started and not http_task.done():
        await asyncio.sleep(0.01)
    if http_task.done():
        await grpc_server.stop(0)
        watcher_task.cancel()
        raise OSError(f"cannot serve HTTP on {settings.host}:{http_port}")

    if worker is not None:  # the parent announced the addresses
        announce(f"scopegate: worker {worker} (pid {os.getpid()}) serving")
    elif one_port:
        scheme = "https" if tls else "http"
        announce(
            f"scopegate: gRPC and {scheme.upper()} listening on one port, "
            f"{scheme}://{settings.host}:{http_port}"
        )
        if tls:
            announce(f"scopegate: TLS certificate {tls.cert_file}")
    elif tls:
        announce(f"scopegate: gRPC listening on {settings.host}:{grpc_port} (TLS)")
        announce(f"scopegate: HTTPS listening on https://{settings.host}:{http_port}")
        announce(f"scopegate: TLS certificate {tls.cert_file}")
    else:
        announce(f"scopegate: gRPC listening on {settings.host}:{grpc_port}")
        announce(f"scopegate: HTTP listening on http://{settings.host}:{http_port}")
    if metrics_url and worker is None:
        announce(f"scopegate: metrics on {metrics_url}")
    if worker is None:
        announce(f"scopegate: data in {settings.data_dir} ({_redacted(settings.database_url)})")
    if forwarding is not None and not worker:
        for line in forwarding.describe():
            announce(line)

    await stop.wait()
    announce("scopegate: shutting down, finishing in-flight requests")
    await operations.stop()
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    http.should_exit = True
    await asyncio.gather(grpc_server.stop(GRACE_SECONDS), http_task)
    watcher_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher_task
    await asyncio.to_thread(watcher.flush)
    await close_limits(dispatcher)
    await asyncio.to_thread(downloader.close)
    if forwarding is not None:
        await forwarding.close()
    services.engine.dispose()
    announce("scopegate: stopped" if worker is None else f"scopegate: worker {worker} stopped")


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    # reuse_port: the other workers listen on this port too; the kernel spreads connections.
    sock = bind_tcp(host, port, "cannot listen for HTTP on", reuse_port=reuse_port)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
