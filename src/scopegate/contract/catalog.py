"""The method catalog: every endpoint fact, read from the official descriptors.

`clarifai-grpc` ships the Clarifai V2 contract as compiled protobuf descriptors. Routes,
auth types, required scopes, scope dependencies and status codes all come from here;
nothing else in scopegate types them again.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from functools import cache

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from clarifai_grpc.grpc.auth.scope import scope_pb2
from clarifai_grpc.grpc.auth.util import extension_pb2
from google.api import annotations_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

SERVICE_NAME = "clarifai.api.V2"
_PATH_VARIABLE = re.compile(r"\{([^}]+)\}")


class AuthType(enum.IntEnum):
    """`clarifai.auth.types.AuthType`, as annotated on each method."""

    UNDEF = 0
    NO_AUTH = 1
    KEY_AUTH = 2
    SESSION_TOKEN_AUTH = 3
    ADMIN_AUTH = 4
    PAT_AUTH = 5


# For the request path, which asks on every call: an enum member read off its class costs
# ~10x a module global.
NO_AUTH = AuthType.NO_AUTH

# Scope families (the part of a scope's name before `_Action`) that administer an account
# rather than an app's data: who holds keys, who collaborates, what happened, what it
# costs, which apps exist. `Apps_Get` alone is reading an app, which any app grant gives.
ACCOUNT_ADMINISTRATION = frozenset(
    {
        "Keys",
        "Collaborators",
        "AuditLogs",
        "Secrets",
        "PasswordPolicies",
        "HistoricalUsage",
        "UserMetrics",
        "Apps",
    }
)
_READING_AN_APP = "Apps_Get"


@dataclass(frozen=True, slots=True)
class HttpBinding:
    """One `google.api.http` rule: an HTTP verb and a path template."""

    verb: str
    template: str
    body: str
    # Dotted request-field paths named by the template, in order (`user_app_id.app_id`).
    variables: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class MethodSpec:
    """Everything the server knows about one V2 method."""

    name: str
    full_name: str  # "/clarifai.api.V2/PostKeys", the gRPC path and the `endpoints` form
    input_type: type[Message]
    output_type: type[Message]
    auth_type: AuthType
    scopes: frozenset[str]
    bindings: tuple[HttpBinding, ...]
    client_streaming: bool
    server_streaming: bool
    has_user_app_id: bool = field(default=False)
    # Acts on an account (the user, its keys, apps as a set, audit log, collaborations),
    # not on one app's data: see `acts_on_account`.
    account_level: bool = field(default=False)

    def __repr__(self) -> str:
        return f"MethodSpec({self.full_name})"


@dataclass(frozen=True, slots=True)
class ScopeSpec:
    name: str
    number: int
    exposed: bool
    deprecated: bool
    depends_on: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    methods: dict[str, MethodSpec]  # by short name ("PostKeys")
    by_full_name: dict[str, MethodSpec]  # by "/clarifai.api.V2/PostKeys"
    scopes: dict[str, ScopeSpec]  # by name ("Inputs_Get"); `undef` left out
    status_codes: dict[int, str]  # number -> name

    def method(self, name: str) -> MethodSpec:
        return self.methods[name]


def _bindings(method: MethodDescriptor) -> tuple[HttpBinding, ...]:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    found = []
    for r in (rule, *rule.additional_bindings):
        verb = r.WhichOneof("pattern")
        if verb is None or verb == "custom":
            continue
        template = getattr(r, verb)
        found.append(
            HttpBinding(
                verb=verb.upper(),
                template=template,
                body=r.body,
                variables=tuple(_PATH_VARIABLE.findall(template)),
            )
        )
    return tuple(found)


def _scope_name(number: int) -> str:
    return scope_pb2.S.Name(number)


def acts_on_account(
    auth_type: AuthType,
    has_user_app_id: bool,
    scopes: frozenset[str],
    bindings: tuple[HttpBinding, ...],
) -> bool:
    """Whether a method acts on the account its `user_app_id.user_id` names rather than on
    one app: it needs an account-administration scope (any `Keys_*`, `Collaborators_*`,
    `AuditLogs_*`, ..., `Apps_*` but `Apps_Get`), or none of its routes names an app while
    one names a user (`/v2/users/{user_id}/keys`) or it takes a PAT only. Only the
    account's owner, and an organization's roles on the organization, reach such a method;
    a grant on one of its apps never does."""
    if not has_user_app_id:
        return False  # names no owner: always the caller's own
    if any(s != _READING_AN_APP and s.rpartition("_")[0] in ACCOUNT_ADMINISTRATION for s in scopes):
        return True
    variables = {v for b in bindings for v in b.variables}
    if "user_app_id.app_id" in variables:
        return False  # an app's method, also where another of its routes names no app
    return "user_app_id.user_id" in variables or auth_type is AuthType.PAT_AUTH


def _load_method(method: MethodDescriptor) -> MethodSpec:
    options = method.GetOptions()
    scopes = frozenset(
        _scope_name(s) for s in options.Extensions[extension_pb2.cl_depending_scopes]
    )
    bindings = _bindings(method)
    has_user_app_id = "user_app_id" in method.input_type.fields_by_name
    auth_type = AuthType(options.Extensions[extension_pb2.cl_auth_type])
    return MethodSpec(
        name=method.name,
        full_name=f"/{SERVICE_NAME}/{method.name}",
        input_type=message_factory.GetMessageClass(method.input_type),
        output_type=message_factory.GetMessageClass(method.output_type),
        auth_type=auth_type,
        scopes=scopes,
        bindings=bindings,
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
        has_user_app_id=has_user_app_id,
        account_level=acts_on_account(auth_type, has_user_app_id, scopes, bindings),
    )


def _load_scopes() -> dict[str, ScopeSpec]:
    scopes = {}
    for value in scope_pb2.S.DESCRIPTOR.values:
        if value.number == 0:
            continue
        options = value.GetOptions()
        scopes[value.name] = ScopeSpec(
            name=value.name,
            number=value.number,
            exposed=bool(options.Extensions[scope_pb2.clarfai_exposed]),
            deprecated=bool(options.deprecated),
            depends_on=tuple(
                _scope_name(s) for s in options.Extensions[scope_pb2.clarifai_depending_scopes]
            ),
        )
    return scopes


@cache
def load_catalog() -> Catalog:
    """Read the catalog once per process from the installed descriptors."""
    service = service_pb2.DESCRIPTOR.services_by_name["V2"]
    methods = {m.name: _load_method(m) for m in service.methods}
    return Catalog(
        methods=methods,
        by_full_name={spec.full_name: spec for spec in methods.values()},
        scopes=_load_scopes(),
        status_codes={v.number: v.name for v in status_code_pb2.StatusCode.DESCRIPTOR.values},
    )
