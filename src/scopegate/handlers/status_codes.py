"""ListStatusCodes and GetStatusCode, answered from the StatusCode enum of the descriptors."""

from __future__ import annotations

from clarifai_grpc.grpc.api.status import status_pb2

from scopegate.context import RequestContext
from scopegate.contract.status import invalid_argument
from scopegate.handlers import Handler


def list_status_codes(ctx: RequestContext, request):
    response = ctx.spec.output_type()
    for code, name in sorted(ctx.services.catalog.status_codes.items()):
        response.statuses.append(status_pb2.Status(code=code, description=name))
    return response


def get_status_code(ctx: RequestContext, request):
    raw = request.status_code_id.strip()
    codes = ctx.services.catalog.status_codes
    code = int(raw) if raw.isdigit() else None
    if code is None:
        by_name = {name: number for number, name in codes.items()}
        code = by_name.get(raw.upper())
    if code is None or code not in codes:
        raise invalid_argument(
            f"'{raw}' is not a status code: give its number (e.g. 10000) or name (e.g. SUCCESS)."
        )
    response = ctx.spec.output_type()
    response.status.CopyFrom(status_pb2.Status(code=code, description=codes[code]))
    return response


HANDLERS = {
    "ListStatusCodes": Handler(list_status_codes, blocking=False),
    "GetStatusCode": Handler(get_status_code, blocking=False),
}
