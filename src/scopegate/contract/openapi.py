"""The REST API as an OpenAPI 3.1 document, generated from the catalog.

Every `google.api.http` binding of every V2 method and every extension method's route is
one operation; request and response schemas come from the proto descriptors, written the
way the REST transport reads and writes JSON: proto field names (snake_case), enums as
numbers, 64-bit integers as strings, well-known types in their proto3 JSON forms. A
binding with a body takes the whole request message from it (the transport reads path,
query and body into one message, path values winning); one without takes the message's
other fields from the query string under dotted names. Nothing here is typed by hand but
the error answers, which are the README's table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from clarifai_grpc.grpc.api.status import status_pb2
from clarifai_grpc.grpc.api.utils import extensions_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from scopegate.contract.catalog import AuthType, Catalog, HttpBinding, MethodSpec, load_catalog
from scopegate.contract.extensions import EXTENSION_METHODS, is_extension

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
_REFS = "#/components/schemas/"
_STATUS = status_pb2.Status.DESCRIPTOR.full_name
_VARIABLE = re.compile(r"\{([^}]+)\}")
# Query parameters name nested fields by dotted paths; deeper ones are left to the body
# of a binding that has one (the transport would still read them from the query).
_QUERY_DEPTH = 3
_F = FieldDescriptor

_INT32 = frozenset({_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32})
_UINT32 = frozenset({_F.TYPE_UINT32, _F.TYPE_FIXED32})
_INT64 = frozenset({_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64})
_UINT64 = frozenset({_F.TYPE_UINT64, _F.TYPE_FIXED64})
_FLOATS = frozenset({_F.TYPE_FLOAT, _F.TYPE_DOUBLE})

# proto3 JSON writes 64-bit integers as decimal strings and reads either form.
_INT64_SCHEMA: Schema = {"type": ["string", "integer"], "pattern": "^-?[0-9]+$"}
_UINT64_SCHEMA: Schema = {"type": ["string", "integer"], "pattern": "^[0-9]+$", "minimum": 0}
# Floats are numbers, but NaN and the infinities are written as strings.
_FLOAT_SCHEMA: Schema = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}
_BYTES_SCHEMA: Schema = {"type": "string", "contentEncoding": "base64"}

_WRAPPED = {
    "BoolValue": {"type": "boolean"},
    "StringValue": {"type": "string"},
    "BytesValue": _BYTES_SCHEMA,
    "Int32Value": {"type": "integer", "format": "int32"},
    "UInt32Value": {"type": "integer", "format": "int32", "minimum": 0},
    "Int64Value": _INT64_SCHEMA,
    "UInt64Value": _UINT64_SCHEMA,
    "FloatValue": _FLOAT_SCHEMA,
    "DoubleValue": _FLOAT_SCHEMA,
}
# Well-known types with a JSON form of their own (proto3 JSON mapping).
_WELL_KNOWN: dict[str, Schema] = {
    **{f"google.protobuf.{name}": schema for name, schema in _WRAPPED.items()},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "required": ["@type"]},
}
# Well-known types the query string cannot carry (the transport hands other ones their
# JSON string form, which suits wrappers, Timestamp, Duration and FieldMask).
_NOT_IN_QUERY = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Empty",
        "google.protobuf.Any",
    }
)

SECURITY_SCHEMES: Schema = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "authorization",
        "description": "`Key <secret>`: a Personal Access Token, or an app-specific API key "
        "where the method takes one.",
    },
    "SessionToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Clarifai-Session-Token",
        "description": "A session token from `POST /v2/login` (the web portal's).",
    },
}

# The README's table ("How requests are answered"): every answer is a JSON object whose
# `status` carries the Clarifai code; an error body may also carry the response's items.
_ERRORS: dict[str, str] = {
    "207": "`MIXED_STATUS` 10010: some items of the request failed; each carries its status.",
    "400": "`CONN_BAD_REQUEST_FORMAT` 11100 (body or query not decodable) or "
    "`CONN_INVALID_REQUEST` 11102 (decodable but invalid).",
    "401": "`CONN_INVALID_REQUEST` 11102 (missing or malformed `authorization` header) or "
    "`CONN_KEY_INVALID` 11008 (unknown, malformed or expired secret; API key naming "
    "another app).",
    "403": "`CONN_INSUFFICIENT_SCOPES` 11007: the credential lacks scopes (listed in "
    "`details`), or is of a kind this method does not take.",
    "404": "`CONN_DOES_NOT_EXIST` 11101 (missing, or not visible to the caller) or "
    "`NOT_IMPLEMENTED` 10040 (in the contract, not served here).",
    "405": "`CONN_METHOD_NOT_ALLOWED` 11103: the path exists, not with this verb.",
    "409": "`…ALREADY_EXISTS` codes.",
    "429": "`CONN_THROTTLED` 11005 (with `Retry-After`).",
    "500": "`FAILURE` 10020: an internal error; the body carries only a request id.",
    "503": "`TRY_AGAIN` 10030: the database stayed locked past the lock timeout.",
}
_ANSWERED_WITHOUT_AUTH = ("207", "400", "404", "409", "429", "500", "503")
_ANSWERED_WITH_AUTH = ("207", "400", "401", "403", "404", "409", "429", "500", "503")

_DESCRIPTION = """\
scopegate's REST API: the Clarifai V2 contract as the installed `clarifai-grpc` descriptors
define it (every HTTP binding of every method), and scopegate's organization methods.

Requests are filled from the path variables, then the query string (dotted field names,
repeated fields as repeated keys), then the JSON body; path values win. JSON uses proto
field names (snake_case), enums as numbers and 64-bit integers as strings. Every answer
carries `status` (`code`, `description`, `details`, `req_id`); the HTTP status follows the
code (see the responses). A method without a handler here answers `NOT_IMPLEMENTED`
(10040, HTTP 404) after authentication and authorization.

Where the contract binds two methods to the same verb and path, REST reaches the first,
which is the one listed.
"""


class _Schemas:
    """Component schemas of the messages and enums reached, by full proto name."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {}

    def ref(self, descriptor: Descriptor) -> Schema:
        known = _WELL_KNOWN.get(descriptor.full_name)
        if known is not None:
            return dict(known)
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # reserved first: messages nest themselves
            self.components[name] = self._message(descriptor)
        return {"$ref": _REFS + name}

    def _message(self, descriptor: Descriptor) -> Schema:
        properties = {field.name: self.field(field) for field in descriptor.fields}
        schema: Schema = {"type": "object", "properties": properties}
        if descriptor.oneofs:
            schema["description"] = "At most one field of each: " + "; ".join(
                ", ".join(f.name for f in oneof.fields) for oneof in descriptor.oneofs
            )
        return schema

    def field(self, field: FieldDescriptor) -> Schema:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            value = self.field(message.fields_by_name["value"])
            return {"type": "object", "additionalProperties": value}
        item = self.scalar(field)
        if field.is_repeated:
            return {"type": "array", "items": item}
        default = field.GetOptions().Extensions[extensions_pb2.cl_default_float]
        if default:
            item = {**item, "default": default}
        return item

    def scalar(self, field: FieldDescriptor) -> Schema:
        kind = field.type
        if field.message_type is not None:
            return self.ref(field.message_type)
        if kind == _F.TYPE_ENUM:
            return self._enum(field.enum_type)
        if kind == _F.TYPE_BOOL:
            return {"type": "boolean"}
        if kind == _F.TYPE_STRING:
            return {"type": "string"}
        if kind == _F.TYPE_BYTES:
            return dict(_BYTES_SCHEMA)
        if kind in _INT32:
            return {"type": "integer", "format": "int32"}
        if kind in _UINT32:
            return {"type": "integer", "format": "int32", "minimum": 0}
        if kind in _INT64:
            return dict(_INT64_SCHEMA)
        if kind in _UINT64:
            return dict(_UINT64_SCHEMA)
        if kind in _FLOATS:
            return dict(_FLOAT_SCHEMA)
        raise ValueError(f"unmapped field type {kind} of {field.full_name}")

    def _enum(self, descriptor: EnumDescriptor) -> Schema:
        name = descriptor.full_name
        if name not in self.components:
            values = descriptor.values
            self.components[name] = {
                # Numbers, as the transport writes them; it also reads the names.
                "type": "integer",
                "enum": [v.number for v in values],
                "description": ", ".join(f"{v.number} {v.name}" for v in values),
            }
        return {"$ref": _REFS + name}


def _query_fields(
    descriptor: Descriptor, prefix: str, depth: int, seen: frozenset[str]
) -> Iterable[tuple[str, FieldDescriptor]]:
    """(dotted name, field) for every field the query string can set."""
    for field in descriptor.fields:
        dotted = prefix + field.name
        message = field.message_type
        if message is None or message.full_name in _WELL_KNOWN:
            if message is None or message.full_name not in _NOT_IN_QUERY:
                yield dotted, field
            continue
        if field.is_repeated or depth >= _QUERY_DEPTH or message.full_name in seen:
            continue  # a list of messages or a cycle: only the body can carry it
        yield from _query_fields(message, dotted + ".", depth + 1, seen | {message.full_name})


def path_parameter(variable: str) -> str:
    """A path variable's parameter name: the field path, `_` for `.` (common tools read a
    dotted parameter name as an attribute lookup)."""
    return variable.replace(".", "_")


def _path(binding: HttpBinding) -> str:
    return _VARIABLE.sub(lambda m: "{" + path_parameter(m.group(1)) + "}", binding.template)


def _covers(path_fields: frozenset[str], dotted: str) -> bool:
    """Whether a path variable sets this field, or a field it lies inside."""
    return any(dotted == v or dotted.startswith(v + ".") for v in path_fields)


def _parameters(spec: MethodSpec, binding: HttpBinding, schemas: _Schemas) -> list[Schema]:
    parameters: list[Schema] = [
        {
            "name": path_parameter(variable),
            "in": "path",
            "required": True,
            "description": f"Sets `{variable}`.",
            # The router matches one non-empty segment per variable.
            "schema": {"type": "string", "minLength": 1},
        }
        for variable in binding.variables
    ]
    if binding.body or is_extension(spec):
        return parameters
    path_fields = frozenset(binding.variables)
    descriptor = spec.input_type.DESCRIPTOR
    for dotted, field in _query_fields(descriptor, "", 1, frozenset({descriptor.full_name})):
        if _covers(path_fields, dotted):
            continue
        parameter: Schema = {"name": dotted, "in": "query", "schema": schemas.field(field)}
        if field.is_repeated:
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _status_only() -> Schema:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"$ref": _REFS + _STATUS}},
    }


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _security(spec: MethodSpec) -> list[dict[str, list[str]]]:
    if spec.auth_type is AuthType.NO_AUTH:
        return []
    if spec.auth_type in (AuthType.SESSION_TOKEN_AUTH, AuthType.ADMIN_AUTH):
        return [{"SessionToken": []}]
    return [{"ApiKey": []}, {"SessionToken": []}]


def _summary(spec: MethodSpec) -> str:
    scopes = ", ".join(sorted(spec.scopes)) or "none"
    auth = spec.auth_type.name
    streaming = " Streams over gRPC; REST answers one message." if spec.server_streaming else ""
    return f"`{spec.full_name}`. Auth: {auth}. Scopes: {scopes}.{streaming}"


def _operation(spec: MethodSpec, binding: HttpBinding, index: int, schemas: _Schemas) -> Schema:
    answered_with = (
        _ANSWERED_WITHOUT_AUTH if spec.auth_type is AuthType.NO_AUTH else _ANSWERED_WITH_AUTH
    )
    if is_extension(spec):
        success = _status_only()  # plus the extension's own document beside `status`
        with_body = binding.verb in ("POST", "PATCH", "PUT")
        request: Schema | None = {"type": "object"} if with_body else None
    else:
        # Every answer carries `status`, the response message's fields beside it.
        success = {"$ref": schemas.ref(spec.output_type.DESCRIPTOR)["$ref"], "required": ["status"]}
        request = schemas.ref(spec.input_type.DESCRIPTOR) if binding.body else None
    operation: Schema = {
        "operationId": spec.name if index == 0 else f"{spec.name}_{index + 1}",
        "summary": spec.name,
        "description": _summary(spec),
        "tags": [spec.full_name.rsplit("/", 2)[1]],
        "security": _security(spec),
        "x-scopes": sorted(spec.scopes),
        "parameters": _parameters(spec, binding, schemas),
        "responses": {
            "200": {"description": "`SUCCESS` 10000", "content": _json(success)},
            **{code: {"$ref": f"#/components/responses/{code}"} for code in answered_with},
        },
    }
    if request is not None:
        operation["requestBody"] = {"required": False, "content": _json(request)}
    return operation


def _shape(binding: HttpBinding) -> tuple[str, str]:
    """The verb and the template with its variables unnamed: the router's key."""
    return binding.verb, _VARIABLE.sub("{}", binding.template.rstrip("/"))


def build_document(catalog: Catalog, extensions: Iterable[MethodSpec]) -> Schema:
    schemas = _Schemas()
    schemas.ref(status_pb2.Status.DESCRIPTOR)  # every answer's `status`
    paths: dict[str, Schema] = {}
    taken: set[tuple[str, str]] = set()
    for spec in (*catalog.methods.values(), *extensions):
        for index, binding in enumerate(spec.bindings):
            shape = _shape(binding)
            if shape in taken:
                continue  # the router reaches the first method bound to a verb and shape
            taken.add(shape)
            item = paths.setdefault(_path(binding), {})
            item[binding.verb.lower()] = _operation(spec, binding, index, schemas)
    error = _status_only()
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "scopegate", "version": _contract_version(), "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "responses": {
                code: {"description": text, "content": _json(error)}
                for code, text in _ERRORS.items()
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _contract_version() -> str:
    from importlib.metadata import version

    return f"clarifai-grpc {version('clarifai-grpc')}"


@cache
def openapi_json() -> bytes:
    """The document for the installed contract, built once per process."""
    document = build_document(load_catalog(), EXTENSION_METHODS.values())
    return json.dumps(document, separators=(",", ":")).encode()
