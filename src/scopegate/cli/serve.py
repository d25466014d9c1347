"""`scopegate serve`: the server in the foreground."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.common import DatabaseUrl, DataDir, env_option, settings, usage
from scopegate.cli.option_groups import option_group
from scopegate.server.config import observability_settings
from scopegate.store.database import SchemaMismatch


@dataclass(frozen=True, slots=True)
class Listening:
    """Where `serve` listens: the options named as the settings they give."""

    host: Annotated[str, env_option("--host")] = "127.0.0.1"
    grpc_port: Annotated[int, env_option("--grpc-port")] = 18080
    http_port: Annotated[int, env_option("--http-port")] = 8000
    port: Annotated[
        int | None,
        env_option(
            "--port",
            help="Serve gRPC and HTTP (REST, the portal) on this one port, chosen per "
            "connection, instead of --grpc-port and --http-port.",
        ),
    ] = None


DEFAULT_LISTENING = Listening()  # a placeholder: @option_group puts the options there


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    """The --upstream* options: where and how methods are forwarded (`_upstream`)."""

    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            help="HOST:PORT of a gRPC server implementing clarifai.api.V2: every method without "
            "a local handler is forwarded there after authorization (SCOPEGATE_UPSTREAM).",
        ),
    ] = None
    upstream_tls: Annotated[
        bool, typer.Option("--upstream-tls", help="Speak TLS to the upstream.")
    ] = False
    upstream_ca: Annotated[
        Path | None,
        typer.Option(
            "--upstream-ca",
            help="PEM roots the upstream's certificate must chain to (implies --upstream-tls).",
        ),
    ] = None
    upstream_timeout: Annotated[
        float | None,
        typer.Option(
            "--upstream-timeout",
            help="Seconds a forwarded call may take (default 30; a client's deadline, if "
            "nearer, wins).",
        ),
    ] = None
    upstream_method: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream-method",
            help="Also forward this method although served here (repeatable; fnmatch "
            "patterns, e.g. 'PostModelOutputs').",
        ),
    ] = None
    upstream_assertion: Annotated[
        bool,
        typer.Option(
            "--upstream-assertion",
            help="Sign each forwarded call's identity (x-scopegate-assertion, EdDSA JWT); "
            "public keys at /.well-known/jwks.json.",
        ),
    ] = False


NO_UPSTREAM = UpstreamOptions()  # a placeholder: @option_group puts the options there


@option_group("forwarding", UpstreamOptions)
@option_group("listen", Listening)
def serve(
    listen: Listening = DEFAULT_LISTENING,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    tls_cert: Annotated[
        Path | None,
        env_option(
            "--tls-cert",
            help="PEM certificate chain (server certificate first): serve gRPC and HTTPS over "
            "TLS. Needs --tls-key.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        env_option(
            "--tls-key",
            help="Unencrypted PEM private key of --tls-cert.",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="CIDR of a reverse proxy whose X-Forwarded-For names the client (repeatable; "
            "default: SCOPEGATE_TRUSTED_PROXIES, comma-separated, else none).",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        env_option(
            "--redis-url",
            help="Redis or Valkey (redis://host:port/N) holding the rate-limit counters that "
            "every instance shares; default: counted in this process.",
        ),
    ] = None,
    limits_on_store_failure: Annotated[
        str | None,
        typer.Option(
            "--limits-on-store-failure",
            help="When Redis is unreachable: open (count in this process, log a warning) or "
            "closed (refuse rate-limited requests). Default: "
            "SCOPEGATE_LIMITS_ON_STORE_FAILURE, else open.",
        ),
    ] = None,
    metrics_address: Annotated[
        str | None,
        env_option(
            "--metrics-address",
            help="HOST:PORT to serve GET /metrics on, instead of the HTTP port.",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        env_option(
            "--log-format",
            help="json or text (default: json unless stderr is a terminal).",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        env_option(
            "--log-level",
            help="DEBUG, INFO (default: the access log is INFO), WARNING, ERROR.",
        ),
    ] = None,
    forwarding: UpstreamOptions = NO_UPSTREAM,
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate",
            help="Do not upgrade the schema on start: refuse a database that is behind "
            "(upgrade it with `scopegate db upgrade`).",
        ),
    ] = False,
    workers: Annotated[
        str,
        env_option(
            "--workers",
            help="Serving processes sharing the ports (SO_REUSEPORT), supervised by this one; "
            "'auto': one per usable core.",
        ),
    ] = "1",
) -> None:
    """Serve the API over gRPC and REST until SIGTERM or SIGINT."""
    from scopegate.server import workers as supervision

    try:
        count = supervision.parse_workers(workers)
    except ValueError as exc:
        usage(str(exc))

    from scopegate.observability import logs

    try:
        logs.configure(logs.parse_format(log_format), logs.parse_level(log_level))
        observing = observability_settings(metrics_address)
    except ValueError as exc:
        usage(str(exc))
    config = settings(
        data_dir,
        database_url,
        **asdict(listen),
        tls_cert=tls_cert,
        tls_key=tls_key,
        trusted_proxies=trusted_proxy or (),
        migrate=not no_migrate,
        upstream=_upstream(forwarding),
        observability=observing,
        redis_url=redis_url,
        limits_on_store_failure=limits_on_store_failure,
    )
    role = supervision.worker_role()
    try:
        if role is not None:
            config = supervision.as_worker(config, role)
        elif count > 1:
            # Each worker is this command again (same options and environment).
            command = [sys.executable, "-m", "scopegate", *sys.argv[1:]]
            code = supervision.Supervisor(config, count, command, announce=_announce).run()
            raise typer.Exit(code)
        # Deferred: the transports (gRPC, ASGI) are the heaviest imports; only workers need them.
        from scopegate.server.serve import serve as run

        asyncio.run(run(config, announce=_announce))
    except SchemaMismatch as exc:
        out.fail(f"not serving: {exc}", 2)
    except OSError as exc:
        out.fail(str(exc))


def _announce(line: str) -> None:
    # One write per line: the workers share the parent's stdout.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _upstream(options: UpstreamOptions):
    from scopegate.server.config import upstream_settings

    try:
        return upstream_settings(
            options.upstream,
            tls=options.upstream_tls,
            ca_file=options.upstream_ca,
            timeout=options.upstream_timeout,
            methods=options.upstream_method or (),
            assertion=options.upstream_assertion,
        )
    except ValueError as exc:
        usage(str(exc))
