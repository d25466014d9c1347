"""GET /scopegate/v1/denials/{req_id}: why a request was refused (README, "Explaining
refusals").

The record (access/refusals.py) is answered to the refused credential's owner in full, and
to the target's owner, or an admin of the organization that owns the target, without the
caller's private facts (its credential, scopes, details, address); anyone else, and an
unknown or expired request id, get 11101 alike.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from scopegate.auth import explanations
from scopegate.context import RequestContext
from scopegate.contract import extensions as ext
from scopegate.contract.status import does_not_exist
from scopegate.handlers import Handler
from scopegate.store import orgs, refusals
from scopegate.store.refusals import RefusalRecord


def denial_json(record: RefusalRecord, *, full: bool) -> dict[str, Any]:
    """A record as answered (and printed by `scopegate explain`, which shows it in full)."""
    shown: dict[str, Any] = {
        "request_id": record.request_id,
        "at": record.at.isoformat(),
        "method": record.method,
        "target": {"user_id": record.target_user, "app_id": record.target_app},
        "caller_user_id": record.caller_user,
        "layer": record.layer,
        "code": record.code,
        "description": record.description,
        "required_scopes": list(record.required),
    }
    if full:
        shown |= {
            "credential": {"type": record.credential_kind, "id": record.credential_id},
            "details": record.details,
            "held_scopes": list(record.held),
            "missing_scopes": list(record.missing),
            "client_address": record.client_address,
            "fix": explanations.fix(record.layer, record.missing),
        }
    else:
        # The owner's side: what its grant lacks is its own to know and to fix.
        missing = record.missing if record.layer == explanations.GRANT else ()
        shown |= {"missing_scopes": list(missing), "fix": explanations.fix(record.layer, missing)}
    return shown


def find(ctx: RequestContext, request_id: str) -> RefusalRecord | None:
    recorder = ctx.services.refusals
    found = recorder.pending(request_id) if recorder is not None else None
    if found is None:
        with ctx.services.engine.connect() as conn:
            found = refusals.get(conn, request_id)
    return found


def _get(ctx: RequestContext, _request: Message) -> Message:
    caller = ctx.actor().user_id
    record = find(ctx, ctx.extras[ext.PATH]["req_id"])
    if record is None:
        raise does_not_exist()
    if record.caller_user == caller and record.credential_id:
        full = True
    elif record.target_user == caller:
        full = False
    else:
        with ctx.services.engine.connect() as conn:
            admin = orgs.role_of(conn, record.target_user, caller) == "admin"
        if not admin:
            raise does_not_exist()
        full = False
    ctx.extras[ext.ANSWER] = {"denial": denial_json(record, full=full)}
    return ctx.spec.output_type()


HANDLERS = {ext.GET_DENIAL.name: Handler(_get)}
