"""The API endpoint: a matched route's request decoded, dispatched and answered as JSON.

Every `google.api.http` binding of every V2 method, and scopegate's extension methods
(contract/extensions.py), on the one dispatch path. Responses use proto field names
(snake_case), as the official JSON channel expects; `status` is always present. The gate
(gate.py) matches the route and reads the credentials once and hands both in here.
"""

from __future__ import annotations

import time

from google.protobuf.empty_pb2 import Empty
from starlette.requests import Request
from starlette.responses import Response

from scopegate.access.authentication import Presented
from scopegate.contract import extensions
from scopegate.contract.status import ApiError, C
from scopegate.dispatch import Call, Dispatcher
from scopegate.request_ids import PREFIX_HEADER, sanitized_prefix
from scopegate.transports.rest.codec import message_to_dict
from scopegate.transports.rest.decode import BadRequestError, catalog_request, extension_request
from scopegate.transports.rest.errors import bad_request_format, error_response, json_response
from scopegate.transports.rest.limit_headers import with_limit_fields
from scopegate.transports.rest.router import MethodNotAllowedError, RouteMatch, Router

_EXTENSION_REQUEST = extensions.ExtensionRequest
_NO_MESSAGE = Empty()  # a Call's request until the body is decoded (never dispatched)


def route_path(scope) -> str:
    """The path routes are matched on: what Starlette's `request.url.path` gives, without
    building the URL."""
    return scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def with_key_details(body: dict, details: dict[str, dict]) -> dict:
    """Add `masked` and `last_used_at` to keys in a JSON answer (clients ignore unknown
    fields; the proto's Key has neither)."""
    listed = body.get("keys", []) + ([body["key"]] if "key" in body else [])
    for key in listed:
        key.update(details.get(key.get("id"), {}))
    return body


def unrouted(request: Request, error: MethodNotAllowedError | None) -> Response:
    """The answer to an API path no route takes (404), or not with this verb (405)."""
    if error is not None:
        return error_response(
            ApiError(
                C.CONN_METHOD_NOT_ALLOWED,
                "Method not allowed",
                f"{request.method} is not allowed here; use {', '.join(error.allowed)}.",
            )
        )
    return error_response(
        ApiError(
            C.CONN_DOES_NOT_EXIST,
            "Resource does not exist",
            f"No API route for {request.method} {request.url.path}.",
        )
    )


class ApiEndpoint:
    def __init__(self, dispatcher: Dispatcher, router: Router) -> None:
        self._dispatcher = dispatcher
        self._router = router

    async def answer(
        self, request: Request, match: RouteMatch, presented: Presented | None = None
    ) -> Response:
        """Decode, dispatch, answer. `presented`: the credentials, if the gate read them."""
        received = time.perf_counter()
        spec = match.spec
        extension = spec.input_type is _EXTENSION_REQUEST
        headers = request.headers
        call = Call(
            spec=spec,
            request=_NO_MESSAGE,
            authorization=headers.get("authorization"),
            session_token=headers.get("x-clarifai-session-token"),
            peer=request.client.host if request.client else "",
            presented=presented,
            transport="rest",
            request_id_prefix=sanitized_prefix(headers.get(PREFIX_HEADER)),
            received=received,
        )
        try:
            if extension:
                call.request, call.extras = await extension_request(request, match)
            else:
                call.request = await catalog_request(request, match)
                # A forwarded call ends when the client goes away (gateway/forward.py).
                call.extras["http_receive"] = request.receive
        except BadRequestError as exc:
            # Refused before dispatch, which numbers requests: numbered here, and told.
            error = bad_request_format(str(exc))
            request_id = self._dispatcher.new_request_id(call.request_id_prefix)
            call.request = spec.input_type()
            self._dispatcher.refused(call, error, request_id, "request")
            return error_response(error, request_id)
        extras = call.extras
        response, error = await self._dispatcher.dispatch(call)
        document = message_to_dict(response)
        if extension:
            if error is None:
                document.update(extras[extensions.ANSWER])
        elif details := extras.get("key_details"):
            with_key_details(document, details)
        return with_limit_fields(json_response(document, error), extras, error)

    async def handle(self, request: Request) -> Response:
        """For a request the gate did not route (an API path with a verb no route takes,
        or a path another route owns for other verbs): matched here."""
        try:
            match = self._router.match(request.method, route_path(request.scope))
        except MethodNotAllowedError as exc:
            return unrouted(request, exc)
        if match is None:
            return unrouted(request, None)
        return await self.answer(request, match)
