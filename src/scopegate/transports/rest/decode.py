"""A REST request as the dispatcher's input: path values, query string and JSON body.

A catalog method's request message is filled from the JSON body, then the query string
(dotted names, repeated fields), then the path variables, which win. An extension method
(contract/extensions.py) takes its target from the path into `user_app_id` and hands the
other path variables and the JSON body on as they are.
"""

from __future__ import annotations

import json

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from starlette.requests import Request

from scopegate.contract import extensions
from scopegate.transports.rest.codec import dict_to_message, message_from_path
from scopegate.transports.rest.router import RouteMatch

_TARGET = "user_app_id.user_id"
_WITH_BODY = frozenset({"POST", "PATCH", "PUT"})  # no body read on GET, DELETE

MAX_BODY_BYTES = 128 * 1024 * 1024
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})


class BadRequestError(ValueError):
    pass


# Said when JSON nests deeper than Python's recursion allows (json.loads, or the message
# parser inside a Struct, raise RecursionError): the parser refuses messages nested deeper
# than 100 anyway, so 100 is the depth a client can count on.
TOO_DEEP = "The JSON body nests objects or arrays too deeply; keep it under 100 levels."


def _set_path(target: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        child = target.get(name)
        if not isinstance(child, dict):
            child = target[name] = {}
        target = child
    target[leaf] = value


def _field(descriptor: Descriptor, dotted: str) -> FieldDescriptor:
    field = None
    for name in dotted.split("."):
        if descriptor is None:
            raise BadRequestError(f"'{dotted}' does not name a field of the request.")
        field = descriptor.fields_by_name.get(name) or _by_json_name(descriptor, name)
        if field is None:
            raise BadRequestError(f"'{dotted}' does not name a field of the request.")
        descriptor = field.message_type
    return field


def _by_json_name(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if field.json_name == name:
            return field
    return None


def _scalar(field: FieldDescriptor, raw: str, dotted: str):
    """A query-string value as the JSON value ParseDict expects for `field`."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise BadRequestError(f"'{dotted}' must be true or false, not '{raw}'.")
    if field.type == FieldDescriptor.TYPE_ENUM:
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if field.message_type is not None and field.message_type.full_name.startswith(
        "google.protobuf."
    ):
        return raw  # well-known types (wrappers, Timestamp) take their JSON string form
    if field.message_type is not None:
        raise BadRequestError(f"'{dotted}' is a message; set its fields with dotted names.")
    return raw  # numbers and strings: ParseDict accepts numeric strings


def query_to_dict(descriptor: Descriptor, items: list[tuple[str, str]], into: dict) -> None:
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        grouped.setdefault(key.removesuffix("[]"), []).append(value)
    for dotted, values in grouped.items():
        field = _field(descriptor, dotted)
        if field.is_repeated:
            value = [_scalar(field, v, dotted) for v in values]
        else:
            value = _scalar(field, values[-1], dotted)
        _set_path(into, dotted, value)


async def read_json_body(request: Request) -> dict:
    return parse_json_body(await request.body())


def parse_json_body(body: bytes) -> dict:
    """A request's JSON body as a dict ({} for an empty one); raises BadRequestError."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequestError(f"The body exceeds {MAX_BODY_BYTES} bytes.")
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestError(TOO_DEEP) from None
    if not isinstance(data, dict):
        raise BadRequestError("The body must be a JSON object.")
    return data


def build_message(message_type: type[Message], data: dict) -> Message:
    """JSON to a message; fields marked `cl_default_float` take that default when absent
    (a concept sent without `value` is present, 1.0), as Clarifai's REST API reads them."""
    try:
        return dict_to_message(message_type, data)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequestError(str(exc)) from None
    except RecursionError:
        raise BadRequestError(TOO_DEEP) from None


async def catalog_request(request: Request, match: RouteMatch) -> Message:
    """The method's request message; raises BadRequestError."""
    data = await read_json_body(request)
    query = request.query_params.multi_items() if request.scope.get("query_string") else []
    return catalog_message(match, data, query)


def catalog_message(match: RouteMatch, data: dict, query: list[tuple[str, str]]) -> Message:
    """The method's request message from its JSON body (`data`, consumed), query items and
    the path's values; raises BadRequestError. Envoy's and forward-auth checks decode here
    too (gateway/decision.py)."""
    spec = match.spec
    if not data and not query:
        message = message_from_path(spec.input_type, match.path_values)
        if message is not None:
            return message
    query_to_dict(spec.input_type.DESCRIPTOR, query, data)
    for dotted, value in match.path_values.items():
        _field(spec.input_type.DESCRIPTOR, dotted)
        _set_path(data, dotted, value)
    return build_message(spec.input_type, data)


async def extension_request(request: Request, match: RouteMatch) -> tuple[Message, dict]:
    """The extension's request message (its target) and its extras; raises
    BadRequestError."""
    body = await read_json_body(request) if request.method in _WITH_BODY else {}
    message = match.spec.input_type()
    path = dict(match.path_values)
    message.user_app_id.user_id = path.pop(_TARGET, "")
    return message, {extensions.PATH: path, extensions.BODY: body}
