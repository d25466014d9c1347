"""Envoy's external authorization over gRPC: `envoy.service.auth.v3.Authorization/Check`
on scopegate's gRPC port, with the message definitions of the `xds-protos` package.

Envoy describes the request it holds in `attributes.request.http` (verb, path with query,
headers lower-cased, and with `with_request_body` the body: `raw_body` when
`pack_as_bytes` is set, which a gRPC body needs). decision.py decides it on the
dispatcher's path. Allowed: an `OkHttpResponse` setting the identity headers
(gateway/identity.py) and removing the client's secrets and any `x-scopegate-*` header it
sent. Refused: a `DeniedHttpResponse` with the HTTP status and the JSON body a direct REST
call would get.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest, CheckResponse

from scopegate.access.address_throttle import ThrottledError
from scopegate.auth.limits import parse_address
from scopegate.context import RequestContext
from scopegate.contract.status import ApiError, C
from scopegate.gateway.decision import ExternalAuthorizer, Verdict
from scopegate.gateway.identity import PREFIX, REQUEST_ID, identity_headers
from scopegate.request_ids import PREFIX_HEADER
from scopegate.transports.credential_headers import SESSION_TOKEN
from scopegate.transports.rest.errors import http_code, status_json
from scopegate.transports.rest.forwarded import IPNetwork, client_address

SERVICE = "envoy.service.auth.v3.Authorization"
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_GRPC_OK, _GRPC_PERMISSION_DENIED, _GRPC_UNAUTHENTICATED = 0, 7, 16
_PARTIAL_BODY = "x-envoy-auth-partial-body"
_JSON = base_pb2.HeaderValue(key="content-type", value="application/json")


@functools.lru_cache(maxsize=1024)  # Envoy keeps a few connections: the same peers recur
def _grpc_peer_address(peer: str) -> str:
    """`ipv4:1.2.3.4:5` / `ipv6:[::1]:5` (gRPC's peer form) as the bare address."""
    if peer.startswith(("ipv4:", "ipv6:")):
        address = parse_address(peer)
        if address is not None:
            return str(address)
    return peer


def _headers(http) -> Mapping[str, str]:
    if http.headers:
        return http.headers  # read in place: names lower-cased by Envoy
    # `encode_raw_headers`: the header map, values as bytes, names lower-cased.
    return {
        entry.key.lower(): entry.value or entry.raw_value.decode("latin-1")
        for entry in http.header_map.headers
    }


def denied(error: ApiError, request_id: str) -> CheckResponse:
    response = CheckResponse()
    code = http_code(error)
    response.status.code = _GRPC_UNAUTHENTICATED if code == 401 else _GRPC_PERMISSION_DENIED
    refusal = response.denied_response
    refusal.status.code = code  # envoy.type.v3.StatusCode: the HTTP code's number
    refusal.headers.add(header=_JSON)
    if isinstance(error, ThrottledError):
        retry = base_pb2.HeaderValue(key="retry-after", value=str(error.retry_after))
        refusal.headers.add(header=retry)
    refusal.body = status_json(error, request_id).decode()
    return response


# An allowed call's answer but for its request id, per caller, standing and scopes: most
# checks repeat a few callers, and copying a built answer costs a fraction of building it.
_allowed_answers: dict[tuple, CheckResponse] = {}
_MAX_ANSWERS = 4096


def _allowed_answer(context: RequestContext) -> CheckResponse:
    principal, relation, scopes = context.principal, context.relation, context.scopes
    key = (
        (principal.user_id, principal.credential_id, principal.kind) if principal else None,
        relation,
        scopes,
    )
    answer = _allowed_answers.get(key)
    if answer is None:
        answer = CheckResponse()
        answer.status.code = _GRPC_OK
        ok = answer.ok_response
        for name, value in identity_headers(principal, relation, scopes, ""):
            if name != REQUEST_ID:
                option = ok.headers.add(append_action=_OVERWRITE)
                option.header.key, option.header.value = name, value
        ok.headers_to_remove.append("authorization")
        if len(_allowed_answers) >= _MAX_ANSWERS:
            _allowed_answers.clear()
        _allowed_answers[key] = answer
    return answer


def allowed(verdict: Verdict, incoming: Mapping[str, str]) -> CheckResponse:
    """Set the identity headers (overwriting any the client sent by those names) and
    remove the client's secrets and its other x-scopegate-* headers."""
    context = verdict.context
    assert context is not None  # an allow always carries the call's context
    response = CheckResponse()
    response.CopyFrom(_allowed_answer(context))
    ok = response.ok_response
    option = ok.headers.add(append_action=_OVERWRITE)
    option.header.key, option.header.value = REQUEST_ID, verdict.request_id
    removed = [name for name in incoming if name.startswith(PREFIX) or name == SESSION_TOKEN]
    if removed:
        sent = {option.header.key for option in ok.headers}
        ok.headers_to_remove.extend(sorted(name for name in removed if name not in sent))
    return response


class EnvoyAuthorization:
    """The `Check` method. `trusted`: the proxies whose `attributes.source` names the
    client (for the throttles and the audit); any other caller is itself the client."""

    def __init__(
        self,
        authorizer: ExternalAuthorizer,
        peer_of: Callable[[str], str] = lambda peer: peer,
        trusted: Sequence[IPNetwork] = (),
    ) -> None:
        self._authorizer = authorizer
        self._peer_of = peer_of
        self._trusted = tuple(trusted)

    def _client(self, request: CheckRequest, context: grpc.aio.ServicerContext) -> str:
        peer = _grpc_peer_address(self._peer_of(context.peer() or ""))
        if not self._trusted:
            return peer
        source = request.attributes.source.address.socket_address.address
        return client_address(peer, [source] if source else [], self._trusted)

    async def check(self, request: CheckRequest, context: grpc.aio.ServicerContext):
        http = request.attributes.request.http
        headers = _headers(http)
        if not http.method or not http.path:
            error = ApiError(
                C.CONN_INVALID_REQUEST,
                "Invalid request",
                "The check names no HTTP request (attributes.request.http.method and path).",
            )
            return denied(error, self._authorizer.new_request_id())
        body = http.raw_body or (http.body.encode() if http.body else None)
        verdict = await self._authorizer.decide(
            http.method,
            http.path,
            headers.get("authorization"),
            headers.get("x-clarifai-session-token"),
            self._client(request, context),
            body,
            body_cut=headers.get(_PARTIAL_BODY) == "true",
            grpc_encoding=headers.get("grpc-encoding"),
            transport="envoy",
            request_id_prefix=headers.get(PREFIX_HEADER),
        )
        if verdict.error is not None:
            return denied(verdict.error, verdict.request_id)
        return allowed(verdict, headers)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self.check, CheckRequest.FromString, CheckResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(SERVICE, {"Check": method})
