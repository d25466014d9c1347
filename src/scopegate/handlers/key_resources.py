"""GET|PUT /scopegate/v1/users/{user_id}/keys/{key_id}/resources: a PAT's limits.

Authorized as GetKey and PatchKeys on the account (contract/extensions.py). PUT takes
`{"apps": ["USER/APP", ...], "orgs": ["ORG", ...]}` to limit the token to them, or
`{"all_resources": true}` to lift its limits; the answer, like GET's, is
`{"key_id", "resources"}` with `resources` null for an unlimited key.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from scopegate.context import RequestContext
from scopegate.contract import extensions as ext
from scopegate.contract.status import ApiError, C
from scopegate.handlers import Handler
from scopegate.handlers.keys import find_key, resources_json
from scopegate.services import keys as key_service


def _bad_format(details: str) -> ApiError:
    return ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", details)


def _names(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad_format(f"'{name}' must be a list of non-empty strings.")
    return value


def _get(ctx: RequestContext, _request: Message) -> Message:
    with ctx.services.engine.connect() as conn:
        record = find_key(conn, ctx, ctx.extras[ext.PATH]["key_id"])
    ctx.extras[ext.ANSWER] = {"key_id": record.public_id, "resources": resources_json(record)}
    return ctx.spec.output_type()


def _put(ctx: RequestContext, _request: Message) -> Message:
    body = ctx.extras.get(ext.BODY) or {}
    unknown = set(body) - {"apps", "orgs", "all_resources"}
    if unknown:
        raise _bad_format(
            f'Unknown fields: {", ".join(sorted(unknown))}. Send {{"apps": ["USER/APP"], '
            '"orgs": ["ORG"]} or {"all_resources": true}.'
        )
    lift = body.get("all_resources", False)
    if not isinstance(lift, bool):
        raise _bad_format("'all_resources' must be true or false.")
    app_names, org_ids = _names(body, "apps"), _names(body, "orgs")
    if lift and (app_names or org_ids):
        raise _bad_format("Give 'all_resources' or 'apps'/'orgs', not both.")
    with ctx.services.transaction() as conn:
        record = find_key(conn, ctx, ctx.extras[ext.PATH]["key_id"])
        resources = (
            None if lift else key_service.key_resources(conn, record.user_id, app_names, org_ids)
        )
        record = key_service.set_key_resources(conn, record, resources, actor=ctx.actor())
    ctx.extras[ext.ANSWER] = {"key_id": record.public_id, "resources": resources_json(record)}
    return ctx.spec.output_type()


HANDLERS = {
    ext.GET_KEY_RESOURCES.name: Handler(_get),
    ext.PUT_KEY_RESOURCES.name: Handler(_put),
}
