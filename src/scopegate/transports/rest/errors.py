"""The one place a REST answer gets its HTTP status and headers from an ApiError: the code
(the error's own, else by its Clarifai code), `Retry-After` for a throttled caller (RFC
9110), the request id in `X-Request-Id`, and the `{"status": {...}}` body. Every route, the
gate and the extensions answer through here.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from scopegate.access.address_throttle import ThrottledError
from scopegate.contract.status import ApiError, C, http_status
from scopegate.request_ids import RESPONSE_HEADER

MEDIA_TYPE = "application/json"


def encode(document: Any) -> bytes:
    """An answer as compact UTF-8 JSON, by orjson: the text `json.dumps(o, separators=(",",
    ":"), ensure_ascii=False)` writes, but for a float's exponent (`1e-7`, not `1e-07`: the
    same number), in a seventh of the time or less (a MyScopes answer 1.4 -> 0.2 µs, a page
    of 100 apps 118 -> 10 µs). It writes a non-finite float as null, but the printer never
    hands it one (proto3 JSON writes them as "NaN" and "Infinity"); what JSON cannot hold
    (an object, an integer beyond 64 bits) raises TypeError."""
    return orjson.dumps(document)


def http_code(error: ApiError | None) -> int:
    if error is None:
        return 200
    return error.http_status or http_status(error.code)


def _headers(error: ApiError | None, request_id: str) -> dict[str, str] | None:
    headers = {RESPONSE_HEADER: request_id} if request_id else None
    if isinstance(error, ThrottledError):
        return {**(headers or {}), "retry-after": str(error.retry_after)}
    return headers


def status_json(error: ApiError, request_id: str) -> bytes:
    """`{"status": {...}}` as `MessageToDict` writes an error response (fields in number
    order, empty strings left out), without building a message; a test holds the two equal."""
    status: dict[str, Any] = {"code": error.code}
    if error.description:
        status["description"] = error.description
    if error.details:
        status["details"] = error.details
    if request_id:
        status["req_id"] = request_id
    return encode({"status": status})


def error_response(error: ApiError, request_id: str = "") -> Response:
    """A status-only answer; its request id in `X-Request-Id` too."""
    return Response(
        status_json(error, request_id), http_code(error), _headers(error, request_id), MEDIA_TYPE
    )


def json_response(document: dict, error: ApiError | None = None) -> Response:
    """A JSON document (its `status` included), with the error's HTTP status and headers,
    and the status's request id in `X-Request-Id`."""
    request_id = document.get("status", {}).get("req_id", "")
    return Response(encode(document), http_code(error), _headers(error, request_id), MEDIA_TYPE)


def bad_request_format(details: str) -> ApiError:
    return ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", details)
