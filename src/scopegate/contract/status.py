"""Clarifai statuses: the in-band error model, and how each maps to an HTTP status."""

from __future__ import annotations

from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

C = status_code_pb2  # status code constants: C.SUCCESS, C.CONN_KEY_INVALID, ...

KEY_INVALID_DESCRIPTION = "Invalid API key or Invalid API key/application pair"
DOES_NOT_EXIST_DESCRIPTION = "Resource does not exist"


class ApiError(Exception):
    """A client-visible failure: becomes the response's `status`, never a stack trace."""

    def __init__(
        self,
        code: int,
        description: str,
        details: str = "",
        *,
        http_status: int | None = None,
        response=None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details
        # Set where the code alone does not tell REST callers enough (an authentication
        # failure answered with CONN_INVALID_REQUEST is a 401, not a 400).
        self.http_status = http_status
        # A response message to answer with (its status is set from this error), for
        # failures that report on each item of a batch, such as a refused input.
        self.response = response

    def to_status(self, req_id: str = "") -> status_pb2.Status:
        status = status_pb2.Status()
        self.fill(status, req_id)
        return status

    def fill(self, status: status_pb2.Status, req_id: str) -> None:
        """Write this error into a response's own `status`, in place (a third of the cost
        of building a Status and copying it in)."""
        status.code = self.code
        status.description = self.description
        status.details = self.details
        status.req_id = req_id


def does_not_exist(details: str = "") -> ApiError:
    """What a missing resource and a forbidden one both look like to an outsider."""
    return ApiError(C.CONN_DOES_NOT_EXIST, DOES_NOT_EXIST_DESCRIPTION, details)


def invalid_argument(details: str) -> ApiError:
    return ApiError(C.CONN_INVALID_REQUEST, "Invalid request", details)


def success(req_id: str = "") -> status_pb2.Status:
    status = status_pb2.Status()
    set_success(status, req_id)
    return status


def set_success(status: status_pb2.Status, req_id: str) -> None:
    """Make a response's own `status` a success, in place: a third of the cost of building
    one and copying it in, on every successful request."""
    status.code = C.SUCCESS
    status.description = "Ok"
    status.req_id = req_id


# Explicit HTTP statuses; everything else is derived from the code's name below.
_HTTP_BY_CODE = {
    C.SUCCESS: 200,
    C.MIXED_STATUS: 207,
    C.FAILURE: 500,
    C.TRY_AGAIN: 503,
    # The route is in the contract but this server has no handler for it: a client-side
    # fact (call something else), so no 5xx that would page whoever runs the server.
    C.NOT_IMPLEMENTED: 404,
    C.CONN_ACCOUNT_ISSUES: 403,
    C.CONN_TOKEN_INVALID: 401,
    C.CONN_CREDENTIALS_INVALID: 401,
    C.CONN_EXCEED_HOURLY_LIMIT: 429,
    C.CONN_EXCEED_MONTHLY_LIMIT: 429,
    C.CONN_THROTTLED: 429,
    C.CONN_EXCEEDS_LIMITS: 429,
    C.CONN_INSUFFICIENT_SCOPES: 403,
    C.CONN_KEY_INVALID: 401,
    C.CONN_KEY_NOT_FOUND: 401,
    C.CONN_BAD_REQUEST_FORMAT: 400,
    C.CONN_DOES_NOT_EXIST: 404,
    C.CONN_INVALID_REQUEST: 400,
    C.CONN_METHOD_NOT_ALLOWED: 405,
}


def http_status(code: int) -> int:
    """The HTTP status a REST response carries for a Clarifai status code."""
    known = _HTTP_BY_CODE.get(code)
    if known is not None:
        return known
    name = status_code_pb2.StatusCode.Name(code) if code in _KNOWN_CODES else ""
    if name.endswith(("DOES_NOT_EXIST", "NOT_FOUND")):
        return 404
    if name.endswith(("ALREADY_EXISTS", "DUPLICATE")):
        return 409
    if "INTERNAL" in name or name.endswith("_FAILED"):
        return 500
    return 400


_KNOWN_CODES = frozenset(v.number for v in status_code_pb2.StatusCode.DESCRIPTOR.values)
