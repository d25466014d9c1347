"""A key's limits (rates, usage quota, allowed addresses): the extension routes
`GET|PUT /scopegate/v1/users/{user_id}/keys/{key_id}/limits`, authorized as GetKey and
PatchKeys (contract/extensions.py). PUT replaces all of them; what the body leaves out is
not limited. The change is audited and evicts the key everywhere (services/limits.py).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from scopegate.auth.limits import Limits, LimitsError, from_document, to_document
from scopegate.context import RequestContext
from scopegate.contract import extensions as ext
from scopegate.handlers import Handler
from scopegate.handlers.keys import find_key
from scopegate.services import limits as limit_service

# `Call.extras` key the portal sets (never a REST body): keep the stored remaining count when
# the form left it as shown, so requests made meanwhile are not handed out again.
KEEP_COUNT = "keep_count"


def limits_json(ctx: RequestContext, key_pk: int, key_id: str, limits: Limits) -> dict[str, Any]:
    """The remaining count is the stored one plus what this process holds in leases."""
    left = None if limits.remaining is None else limits.remaining + ctx.services.quota_held(key_pk)
    return {"key_id": key_id, "limits": to_document(limits, left)}


def get_limits(ctx: RequestContext, _request: Message) -> Message:
    with ctx.services.engine.connect() as conn:
        record = find_key(conn, ctx, ctx.extras[ext.PATH]["key_id"])
        found = limit_service.key_limits(conn, record)
    ctx.extras[ext.ANSWER] = limits_json(ctx, record.pk, record.public_id, found)
    return ctx.spec.output_type()


def put_limits(ctx: RequestContext, _request: Message) -> Message:
    try:
        new = from_document(ctx.extras.get(ext.BODY) or {})
    except LimitsError as error:
        raise limit_service.limits_error(error) from None
    with ctx.services.transaction() as conn:
        record = find_key(conn, ctx, ctx.extras[ext.PATH]["key_id"])
        saved = limit_service.set_key_limits(
            conn, record, new, actor=ctx.actor(), keep_count=bool(ctx.extras.get(KEEP_COUNT))
        )
    # As stored: leases taken under the old limits end with them (access/quota.py).
    ctx.extras[ext.ANSWER] = {"key_id": record.public_id, "limits": to_document(saved)}
    return ctx.spec.output_type()


HANDLERS = {
    ext.GET_KEY_LIMITS.name: Handler(get_limits),
    ext.PUT_KEY_LIMITS.name: Handler(put_limits),
}
