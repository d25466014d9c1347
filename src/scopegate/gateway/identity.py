"""The identity an authorized call carries past scopegate, as headers (gRPC metadata or
HTTP), and the incoming headers that must never reach what lies behind it.

Whatever sits behind scopegate (a forwarded gRPC upstream, the service behind Envoy, nginx,
Traefik or Caddy) reads who called from these headers only: the client's secrets are
removed, and so is every `x-scopegate-*` header the client sent, so that none can be
spoofed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TypeVar

from scopegate.auth.policy import Relation
from scopegate.auth.principal import CredentialKind, Principal

PREFIX = "x-scopegate-"
CALLER = "x-scopegate-caller"
CREDENTIAL = "x-scopegate-credential"
CREDENTIAL_TYPE = "x-scopegate-credential-type"
SCOPES = "x-scopegate-scopes"
RELATION = "x-scopegate-relation"
ASSERTION = "x-scopegate-assertion"
REQUEST_ID = "x-request-id"
# Who called and how: absent from a NoAuth call's identity (the request id never is).
IDENTITY_NAMES = (CALLER, CREDENTIAL, CREDENTIAL_TYPE, SCOPES, RELATION)

# The headers that carry a client's secrets (see transports/credential_headers.py).
SECRET_HEADERS = frozenset({"authorization", "x-clarifai-session-token"})

CREDENTIAL_TYPES = {
    CredentialKind.PAT: "personal_access_token",
    CredentialKind.APP_KEY: "app_specific_key",
    CredentialKind.SESSION: "session",
}
RELATIONS = {
    Relation.OWNER: "owner",
    Relation.COLLABORATOR: "collaborator",
    Relation.MEMBER: "member",
    Relation.PUBLIC: "public",
}


@functools.lru_cache(maxsize=4096)
def scopes_value(scopes: frozenset[str]) -> str:
    """Comma-separated, sorted; kept per set (a frozenset's hash is computed once), so a
    repeat caller costs a lookup, not a sort."""
    return ",".join(sorted(scopes))


def identity_headers(
    principal: Principal | None,
    relation: Relation | None,
    scopes: frozenset[str],
    request_id: str,
) -> list[tuple[str, str]]:
    """The identity of an allowed call: who, with which credential, standing how toward the
    target, allowed which scopes (after any collaborator or role grant); and the request id
    (the answer's `status.req_id`). A NoAuth call has no caller: the request id only."""
    if principal is None:
        return [(REQUEST_ID, request_id)]
    headers = [
        (CALLER, principal.user_id),
        (CREDENTIAL, principal.credential_id),
        (CREDENTIAL_TYPE, CREDENTIAL_TYPES[principal.kind]),
        (SCOPES, scopes_value(scopes)),
    ]
    if relation in RELATIONS:
        headers.append((RELATION, RELATIONS[relation]))
    headers.append((REQUEST_ID, request_id))
    return headers


Name = TypeVar("Name", str, bytes)
_BYTES_SECRETS = frozenset(name.encode() for name in SECRET_HEADERS)
_BYTES_PREFIX = PREFIX.encode()


def is_stripped(name: str | bytes) -> bool:
    """Whether a header by this name (any case; str or bytes) must not pass on."""
    if isinstance(name, bytes):
        lowered = name.lower()
        return lowered in _BYTES_SECRETS or lowered.startswith(_BYTES_PREFIX)
    lowered_str = name.lower()
    return lowered_str in SECRET_HEADERS or lowered_str.startswith(PREFIX)


def strip_incoming(headers: Iterable[tuple[Name, Name]]) -> list[tuple[Name, Name]]:
    """`headers` without the client's secrets (`authorization`, `x-clarifai-session-token`)
    and without any `x-scopegate-*` header, whatever their case; the rest in order."""
    return [(name, value) for name, value in headers if not is_stripped(name)]
