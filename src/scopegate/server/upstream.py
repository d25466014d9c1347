"""Forwarding upstream, composed for `scopegate serve --upstream` (gateway/): which methods
go upstream, their dispatcher handler, their gRPC handlers, the JWKS route, the start log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
from starlette.types import ASGIApp

from scopegate.contract.catalog import Catalog, MethodSpec
from scopegate.dispatch import Dispatcher
from scopegate.gateway.assertion import KEY_FILE, AssertionSigner, load_or_create_key, with_jwks
from scopegate.gateway.forward import Forwarder
from scopegate.gateway.settings import UpstreamSettings, forwarded_methods
from scopegate.gateway.streams import PeerOf, StreamForwarding
from scopegate.gateway.upstream import Upstream
from scopegate.handlers import Handler, all_handlers

Wrap = Callable[[MethodSpec, grpc.RpcMethodHandler], grpc.RpcMethodHandler]


class Forwarding:
    def __init__(self, settings: UpstreamSettings, catalog: Catalog, data_dir: Path) -> None:
        self.settings = settings
        self.signer = None
        if settings.assertion:
            key_file = settings.assertion_key_file or data_dir / KEY_FILE
            try:
                self.signer = AssertionSigner(load_or_create_key(key_file))
            except (ValueError, TypeError) as exc:  # the CLI reports an OSError in one line
                raise OSError(f"cannot sign assertions with {key_file}: {exc}") from None
        self.upstream = Upstream(settings)
        self.forwarder = Forwarder(self.upstream, self.signer)
        self.forwarded, self.served = forwarded_methods(
            catalog, all_handlers().keys(), settings.methods
        )
        self._local = set(all_handlers())

    def handlers(self) -> dict[str, Handler]:
        """The dispatcher's handler of each forwarded method, over the local ones."""
        return dict.fromkeys(self.forwarded, self.forwarder.handler)

    def grpc_wrap(self, dispatcher: Dispatcher, peer_of: PeerOf) -> Wrap:
        """The gRPC transport's handlers of forwarded methods: streams as streams, the
        client's deadline kept for unary calls."""
        streams = StreamForwarding(dispatcher, self.forwarder, peer_of)
        names = frozenset(self.forwarded)

        def wrap(spec: MethodSpec, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
            return streams.wrap(spec, handler) if spec.name in names else handler

        return wrap

    def http_app(self, app: ASGIApp) -> ASGIApp:
        return app if self.signer is None else with_jwks(app, self.signer)

    def describe(self) -> list[str]:
        """What `serve` says at start: where the methods go."""
        settings = self.settings
        where = settings.address + (" (TLS)" if settings.tls else "")
        overridden = [name for name in self.forwarded if name in self._local]
        lines = [
            f"scopegate: forwarding {len(self.forwarded)} methods to {where} after "
            f"authorization (timeout {settings.timeout:g} s"
            + (", signed assertions" if self.signer else "")
            + "): every method without a local handler"
            + (f", and {', '.join(overridden)}" if overridden else ""),
            f"scopegate: served here ({len(self.served)}): {', '.join(self.served)}",
        ]
        return lines

    async def close(self) -> None:
        await self.upstream.close()
