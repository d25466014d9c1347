"""scopegate's own methods, outside the Clarifai contract, as MethodSpecs.

The proto has no organization methods, so these are defined here, in the catalog's terms:
auth type, required scopes, the account a request names (`user_app_id.user_id`, taken
from the route) and the routes themselves. The dispatcher and `auth/policy` then treat
them exactly like catalog methods: one authentication and one authorization path.

An extension's request message carries only `user_app_id` (the target the policy decides
on); the other route variables and the JSON body travel in the call's extras (`PATH`,
`BODY`), and the handler leaves the JSON document it answers in `ANSWER`. Its response
message carries only `status`. Nothing here is served over gRPC: these specs are not in
the catalog's method table.
"""

from __future__ import annotations

import re
from dataclasses import replace
from types import MappingProxyType

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from scopegate.contract.catalog import AuthType, HttpBinding, MethodSpec

# Keys of `Call.extras` an extension's transport and handler share.
PATH = "path"  # route variables other than the target, e.g. {"team_id": "t1"}
BODY = "body"  # the decoded JSON object ({} for GET and DELETE)
ANSWER = "answer"  # the handler's JSON document, answered beside `status`

PACKAGE = "scopegate.v1"
ORGANIZATIONS = "/scopegate/v1/organizations"
_TARGET = "user_app_id.user_id"
_PATH_VARIABLE = re.compile(r"\{([^}]+)\}")


def _message_types() -> tuple[type[Message], type[Message]]:
    """`ExtensionRequest {UserAppIDSet user_app_id = 1}` and `ExtensionResponse {Status
    status = 1}`, added once to the default descriptor pool."""
    pool = descriptor_pool.Default()
    name = "scopegate/v1/extensions.proto"
    try:
        pool.FindFileByName(name)
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(
            name=name,
            package=PACKAGE,
            syntax="proto3",
            dependency=[resources_pb2.DESCRIPTOR.name, status_pb2.DESCRIPTOR.name],
        )
        for message, field, type_name in (
            ("ExtensionRequest", "user_app_id", ".clarifai.api.UserAppIDSet"),
            ("ExtensionResponse", "status", ".clarifai.api.status.Status"),
        ):
            file.message_type.add(name=message).field.add(
                name=field,
                number=1,
                type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                type_name=type_name,
            )
        pool.AddSerializedFile(file.SerializeToString())
    request, response = (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{m}"))
        for m in ("ExtensionRequest", "ExtensionResponse")
    )
    return request, response


ExtensionRequest, ExtensionResponse = _message_types()


def _spec(
    name: str, verb: str, template: str, scopes: frozenset[str], service: str = "Organizations"
) -> MethodSpec:
    bindings: tuple[HttpBinding, ...] = ()
    if template:
        variables = tuple(_PATH_VARIABLE.findall(template))
        bindings = (HttpBinding(verb=verb, template=template, body="*", variables=variables),)
    return MethodSpec(
        name=name,
        full_name=f"/{PACKAGE}.{service}/{name}",
        input_type=ExtensionRequest,
        output_type=ExtensionResponse,
        # A person's credential: an app-specific key stands for one app, not a member.
        auth_type=AuthType.PAT_AUTH,
        scopes=scopes,
        bindings=bindings,
        client_streaming=False,
        server_streaming=False,
        has_user_app_id=True,
        # The organization is an account: a caller's standing toward it is its role's
        # scopes on the organization (`RoleScopes.on_org`), never a grant on one of its apps.
        account_level=True,
    )


# Reading takes membership: no scope, so every member (and the owner of `me`) passes
# and anyone else meets the policy's "does not exist". Changing takes scopes that
# `RoleScopes.on_org` gives to `admin` alone (it holds `All`): the collaborator scopes,
# as managing members and teams is deciding who collaborates on the organization's apps;
# no other role holds any of the account-administration family but `Apps_Add`/`Apps_Get`.
_READ: frozenset[str] = frozenset()
_MANAGE = frozenset({"Collaborators_Add"})
_REMOVE = frozenset({"Collaborators_Delete"})
# Deleting the organization deletes its apps and their keys too.
_DELETE_ORG = frozenset({"Collaborators_Delete", "Apps_Delete"})

_ORG = f"{ORGANIZATIONS}/{{{_TARGET}}}"

# A key's limits (rates, usage quota, allowed addresses): read as GetKey, set as PatchKeys.
_LIMITS = f"/scopegate/v1/users/{{{_TARGET}}}/keys/{{key_id}}/limits"
GET_KEY_LIMITS = replace(
    _spec("GetKeyLimits", "GET", _LIMITS, frozenset({"Keys_Get"})),
    full_name=f"/{PACKAGE}.Keys/GetKeyLimits",
)
PUT_KEY_LIMITS = replace(
    _spec("PutKeyLimits", "PUT", _LIMITS, frozenset({"Keys_Get", "Keys_Add"})),
    full_name=f"/{PACKAGE}.Keys/PutKeyLimits",
)

LIST_ORGANIZATIONS = _spec(
    "ListOrganizations", "GET", f"/v2/users/{{{_TARGET}}}/organizations", _READ
)
# Names no account: the target is the caller, who becomes the new organization's admin.
POST_ORGANIZATION = _spec("PostOrganization", "POST", ORGANIZATIONS, _READ)
GET_ORGANIZATION = _spec("GetOrganization", "GET", _ORG, _READ)
DELETE_ORGANIZATION = _spec("DeleteOrganization", "DELETE", _ORG, _DELETE_ORG)
POST_MEMBER = _spec("PostOrganizationMember", "POST", f"{_ORG}/members", _MANAGE)
PATCH_MEMBER = _spec("PatchOrganizationMember", "PATCH", f"{_ORG}/members/{{user_id}}", _MANAGE)
# Leaving takes membership only; removing someone else is authorized again, as
# REMOVE_MEMBER (no route of its own), by the handler once it knows who is removed.
DELETE_MEMBER = _spec("DeleteOrganizationMember", "DELETE", f"{_ORG}/members/{{user_id}}", _READ)
REMOVE_MEMBER = _spec("RemoveOrganizationMember", "DELETE", "", _REMOVE)
POST_TEAM = _spec("PostOrganizationTeam", "POST", f"{_ORG}/teams", _MANAGE)
PATCH_TEAM = _spec("PatchOrganizationTeam", "PATCH", f"{_ORG}/teams/{{team_id}}", _MANAGE)
DELETE_TEAM = _spec("DeleteOrganizationTeam", "DELETE", f"{_ORG}/teams/{{team_id}}", _REMOVE)

# A PAT's resources (fine-grained tokens): read as GetKey, changed as PatchKeys.
_KEY = f"/scopegate/v1/users/{{{_TARGET}}}/keys/{{key_id}}"
GET_KEY_RESOURCES = _spec(
    "GetKeyResources", "GET", f"{_KEY}/resources", frozenset({"Keys_Get"}), "Keys"
)
PUT_KEY_RESOURCES = _spec(
    "PutKeyResources", "PUT", f"{_KEY}/resources", frozenset({"Keys_Get", "Keys_Add"}), "Keys"
)

# Why a request was refused: the caller's own account is the target (no user in the path),
# membership of nothing needed; the handler decides who may read which record.
GET_DENIAL = _spec("GetDenial", "GET", "/scopegate/v1/denials/{req_id}", _READ, "Denials")

# Token policies: any member reads the policy; its admins change it and decide on members'
# fine-grained tokens naming the organization.
GET_ORG_POLICY = _spec("GetOrganizationPolicy", "GET", f"{_ORG}/policy", _READ)
PUT_ORG_POLICY = _spec("PutOrganizationPolicy", "PUT", f"{_ORG}/policy", _MANAGE)
LIST_TOKEN_REQUESTS = _spec("ListTokenRequests", "GET", f"{_ORG}/token-requests", _MANAGE)
DECIDE_TOKEN_REQUEST = _spec(
    "DecideTokenRequest", "POST", f"{_ORG}/token-requests/{{key_id}}", _MANAGE
)

EXTENSION_METHODS: MappingProxyType[str, MethodSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            LIST_ORGANIZATIONS,
            GET_KEY_LIMITS,
            PUT_KEY_LIMITS,
            POST_ORGANIZATION,
            GET_ORGANIZATION,
            DELETE_ORGANIZATION,
            POST_MEMBER,
            PATCH_MEMBER,
            DELETE_MEMBER,
            REMOVE_MEMBER,
            POST_TEAM,
            PATCH_TEAM,
            DELETE_TEAM,
            GET_KEY_RESOURCES,
            PUT_KEY_RESOURCES,
            GET_DENIAL,
            GET_ORG_POLICY,
            PUT_ORG_POLICY,
            LIST_TOKEN_REQUESTS,
            DECIDE_TOKEN_REQUEST,
        )
    }
)


def is_extension(spec: MethodSpec) -> bool:
    """JSON in and out (extras), rather than the catalog's proto request and response."""
    return spec.input_type is ExtensionRequest
