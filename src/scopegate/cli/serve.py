"""`scopegate serve`: the server in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.common import DatabaseUrl, DataDir, settings
from scopegate.store.database import SchemaMismatch


def serve(
    host: Annotated[str, typer.Option(envvar="SCOPEGATE_HOST")] = "127.0.0.1",
    grpc_port: Annotated[int, typer.Option(envvar="SCOPEGATE_GRPC_PORT")] = 18080,
    http_port: Annotated[int, typer.Option(envvar="SCOPEGATE_HTTP_PORT")] = 8000,
    port: Annotated[
        int | None,
        typer.Option(
            envvar="SCOPEGATE_PORT",
            help="Serve gRPC and HTTP (REST, the portal) on this one port, chosen per "
            "connection, instead of --grpc-port and --http-port.",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            envvar="SCOPEGATE_TLS_CERT",
            help="PEM certificate chain (server certificate first): serve gRPC and HTTPS over "
            "TLS. Needs --tls-key.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key",
            envvar="SCOPEGATE_TLS_KEY",
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
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate",
            help="Do not upgrade the schema on start: refuse a database that is behind "
            "(upgrade it with `scopegate db upgrade`).",
        ),
    ] = False,
) -> None:
    """Serve the API over gRPC and REST until SIGTERM or SIGINT."""
    # Deferred: the transports (gRPC, ASGI) are the heaviest imports and only `serve` needs them.
    from scopegate.server.serve import serve as run

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = settings(
        data_dir,
        database_url,
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        trusted_proxies=trusted_proxy or (),
        migrate=not no_migrate,
    )
    try:
        asyncio.run(run(config, announce=lambda line: print(line, flush=True)))
    except SchemaMismatch as exc:
        out.fail(f"not serving: {exc}", 2)
    except OSError as exc:
        out.fail(str(exc))
