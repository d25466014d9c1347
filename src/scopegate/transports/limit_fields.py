"""The RateLimit header fields of a limited credential's answer on gRPC (initial metadata;
a refusal's in trailing metadata too), and the client behind a trusted proxy on gRPC
(`x-forwarded-for` metadata, read as REST reads the header: transports/rest/forwarded.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from scopegate.access.limiter import HEADERS, LimitRefusal
from scopegate.auth.limits import parse_address
from scopegate.contract.status import ApiError
from scopegate.dispatch import Call
from scopegate.transports.rest.forwarded import IPNetwork, client_address


def limit_metadata(
    call: Call, error: ApiError | None, context: grpc.aio.ServicerContext
) -> Sequence[tuple[str, str]]:
    """The fields for the initial metadata; a refusal's are set as trailing metadata too."""
    if isinstance(error, LimitRefusal):
        context.set_trailing_metadata(error.headers)
        return error.headers
    if call.extras:
        return call.extras.get(HEADERS, ())
    return ()


def forwarded_client(metadata, peer: str, trusted: Sequence[IPNetwork]) -> str:
    """The last untrusted `x-forwarded-for` hop when the peer is a trusted proxy; else the
    peer as it is."""
    hops = [hop for k, v in metadata if k == "x-forwarded-for" for hop in v.split(",")]
    address = parse_address(peer)
    if not hops or address is None:
        return peer
    found = client_address(str(address), hops, trusted)
    return peer if found == str(address) else found
