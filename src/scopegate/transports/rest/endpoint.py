"""REST transport: every `google.api.http` binding of every V2 method, as JSON.

The request message is filled from the JSON body, then the query string (dotted names,
repeated fields), then the path variables, which win. Responses use proto field names
(snake_case), as the official JSON channel expects; `status` is always present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from scopegate.access.address_throttle import ThrottledError
from scopegate.contract.catalog import Catalog
from scopegate.contract.status import ApiError, C, http_status
from scopegate.dispatch import Call, Dispatcher
from scopegate.transports.rest.codec import dict_to_message, message_from_path, message_to_dict
from scopegate.transports.rest.router import MethodNotAllowedError, Router


def route_path(scope) -> str:
    """The path routes are matched on: what Starlette's `request.url.path` gives, without
    building the URL."""
    return scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


# Where RefusalGate leaves the route it matched and the credentials it read, in the ASGI
# scope, so that neither is done twice.
ROUTE_MATCH = "scopegate.route_match"
CREDENTIALS = "scopegate.credentials"
MAX_BODY_BYTES = 128 * 1024 * 1024
# One encoder for every answer: `json.dumps` with any option builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})


class BadRequestError(ValueError):
    pass


# Said when JSON nests deeper than Python's recursion allows (json.loads, or the message
# parser inside a Struct, raise RecursionError): the parser refuses messages nested deeper
# than 100 anyway, so 100 is the depth a client can count on.
TOO_DEEP = "The JSON body nests objects or arrays too deeply; keep it under 100 levels."


def json_response(message: Message | dict, status_code: int = 200) -> Response:
    body = message if isinstance(message, dict) else to_json_dict(message)
    return Response(
        _ENCODE(body),
        status_code=status_code,
        media_type="application/json",
    )


def to_json_dict(message: Message) -> dict:
    # The official converters, as Clarifai's REST API: fields marked `cl_show_if_empty`
    # (a concept's `value`, …) are shown even when zero, since a client reading JSON takes a
    # missing `value` for its `cl_default_float` (1.0), not for 0.
    return message_to_dict(message)


def status_only(error: ApiError, request_id: str = "") -> Response:
    return json_response(
        {"status": to_json_dict(error.to_status(request_id))},
        error.http_status or http_status(error.code),
    )


def with_retry_after(response: Response, error: ApiError | None) -> Response:
    """A throttled answer says when to come back (RFC 9110 `Retry-After`)."""
    if isinstance(error, ThrottledError):
        response.headers["retry-after"] = str(error.retry_after)
    return response


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
    body = await request.body()
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


def with_key_details(body: dict, details: dict[str, dict]) -> dict:
    """Add `masked` and `last_used_at` to keys in a JSON answer (clients ignore unknown
    fields; the proto's Key has neither)."""
    listed = body.get("keys", []) + ([body["key"]] if "key" in body else [])
    for key in listed:
        key.update(details.get(key.get("id"), {}))
    return body


class RestEndpoint:
    """The ASGI endpoint behind `/v2/...`."""

    def __init__(self, dispatcher: Dispatcher, catalog: Catalog) -> None:
        self._dispatcher = dispatcher
        self.router = Router(catalog)

    async def handle(self, request: Request) -> Response:
        try:
            match = request.scope.get(ROUTE_MATCH) or self.router.match(
                request.method, route_path(request.scope)
            )
        except MethodNotAllowedError as exc:
            return status_only(
                ApiError(
                    C.CONN_METHOD_NOT_ALLOWED,
                    "Method not allowed",
                    f"{request.method} is not allowed here; use {', '.join(exc.allowed)}.",
                )
            )
        if match is None:
            return status_only(
                ApiError(
                    C.CONN_DOES_NOT_EXIST,
                    "Resource does not exist",
                    f"No API route for {request.method} {request.url.path}.",
                )
            )
        spec = match.spec
        try:
            data = await read_json_body(request)
            message = None
            if not data and not request.scope.get("query_string"):
                message = message_from_path(spec.input_type, match.path_values)
            if message is None:
                query_to_dict(spec.input_type.DESCRIPTOR, request.query_params.multi_items(), data)
                for dotted, value in match.path_values.items():
                    _field(spec.input_type.DESCRIPTOR, dotted)
                    _set_path(data, dotted, value)
                message = build_message(spec.input_type, data)
        except BadRequestError as exc:
            return status_only(ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", str(exc)))
        headers: Mapping[str, str] = request.headers
        call = Call(
            spec=spec,
            request=message,
            authorization=headers.get("authorization"),
            session_token=headers.get("x-clarifai-session-token"),
            peer=request.client.host if request.client else "",
            presented=request.scope.get(CREDENTIALS),
        )
        response, error = await self._dispatcher.dispatch(call)
        code = 200 if error is None else (error.http_status or http_status(error.code))
        details = call.extras.get("key_details")
        if details:
            return json_response(with_key_details(to_json_dict(response), details), code)
        return with_retry_after(json_response(response, code), error)
