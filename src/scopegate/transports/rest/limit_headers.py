"""A limited credential's RateLimit header fields on a REST answer (access/limiter.py):
`RateLimit-Policy` and `RateLimit` on every answer, `Retry-After` on a refusal."""

from __future__ import annotations

from starlette.responses import Response

from scopegate.access.limiter import HEADERS, LimitRefusal
from scopegate.contract.status import ApiError


def with_limit_fields(response: Response, extras: dict, error: ApiError | None) -> Response:
    if isinstance(error, LimitRefusal):
        fields = error.headers
    elif extras:
        fields = extras.get(HEADERS, ())
    else:
        return response
    for name, value in fields:
        response.headers[name] = value
    return response
