"""PostAuditLogSearches over scopegate's credential audit log.

Clarifai's EventType has no credential events, so entries carry `operation` unset and the
action (`key.create`, `login.failed`, …) in `description`; `details` names the credential
by kind and public id, and the target.
"""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.context import RequestContext
from scopegate.handlers import Handler
from scopegate.handlers.convert import timestamp
from scopegate.handlers.paging import offset_limit
from scopegate.store import audit
from scopegate.store.records import now


def entry_message(event: audit.AuditEvent) -> resources_pb2.AuditLogEntry:
    entry = resources_pb2.AuditLogEntry(
        timestamp=timestamp(event.at),
        user=resources_pb2.User(id=event.actor_user_id),
        description=event.action,
        # `details` is a repeated string: one `name=value` fact per element (a plain string
        # here would be split into single characters by protobuf).
        details=[
            part
            for part in (
                f"credential={event.credential_kind}:{event.credential_id}"
                if event.credential_kind
                else "",
                f"target={event.target}" if event.target else "",
                event.details,
            )
            if part
        ],
        success=not event.action.endswith(".failed"),
        req_id=event.request_id,
        source_ip=event.client_address,
    )
    kind, _, name = event.target.partition(":")
    if kind == "app" and "/" in name:
        owner, app_id = name.split("/", 1)
        entry.targets.add(app=resources_pb2.App(id=app_id, user_id=owner))
    elif kind == "user":
        entry.targets.add(user=resources_pb2.User(id=name))
    return entry


def search_audit_log(ctx: RequestContext, request):
    query = request.query
    offset, limit = offset_limit(request.pagination.page, request.pagination.per_page)
    tz = now().tzinfo
    with ctx.services.engine.connect() as conn:
        events = audit.search(
            conn,
            ctx.target.user_id,
            since=query.timestamp_from.ToDatetime(tzinfo=tz)
            if query.HasField("timestamp_from")
            else None,
            until=query.timestamp_to.ToDatetime(tzinfo=tz)
            if query.HasField("timestamp_to")
            else None,
            client_addresses=list(query.source_ips),
            ascending=request.sort_ascending,
            offset=offset,
            limit=limit,
        )
    entries = [entry_message(e) for e in events]
    if query.HasField("success"):
        entries = [e for e in entries if e.success == query.success.value]
    return ctx.spec.output_type(entries=entries)


HANDLERS = {"PostAuditLogSearches": Handler(search_audit_log)}
