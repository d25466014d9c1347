"""Keys' limits in the REST answers of ListKeys, ListAppKeys and GetKey (beside `masked`
and `last_used_at`, which the proto's Key lacks too), with the current remaining count."""

from __future__ import annotations

from scopegate.auth.limits import to_document
from scopegate.context import RequestContext
from scopegate.services.limits import limits_of_keys
from scopegate.store.records import KeyRecord


def note_limits(ctx: RequestContext, records: list[KeyRecord]) -> None:
    """One query for all of `records`; keys without limits get `"limits": null`."""
    if not records:
        return
    with ctx.services.engine.connect() as conn:
        found = limits_of_keys(conn, records)
    details = ctx.extras.setdefault("key_details", {})
    held = ctx.services.quota_held
    for record in records:
        limits = found.get(record.pk)
        document = None
        if limits is not None:
            left = None if limits.remaining is None else limits.remaining + held(record.pk)
            document = to_document(limits, left)
        details.setdefault(record.public_id, {})["limits"] = document
