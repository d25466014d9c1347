"""PostKeys, ListKeys, ListAppKeys, GetKey, PatchKeys, DeleteKey.

Keys are named by their public id; where a client sends the secret instead (as scripts
written for Clarifai do), it is recognised by its hash.
"""

from __future__ import annotations

from datetime import datetime

from scopegate.auth.policy import ME
from scopegate.auth.principal import CredentialKind
from scopegate.context import RequestContext
from scopegate.contract.status import ApiError, does_not_exist, invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.convert import WHOLE_ORG, key_message
from scopegate.handlers.limit_details import note_limits
from scopegate.handlers.paging import offset_limit
from scopegate.services import keys as key_service
from scopegate.services.keys import key_endpoints, key_scopes, key_type
from scopegate.store import apps, keys, orgs
from scopegate.store.records import AppRecord, KeyRecord, KeyResources, now


def _scopes(ctx: RequestContext, names) -> frozenset[str]:
    return key_scopes(ctx.services.scopes, names)


def _endpoints(ctx: RequestContext, names) -> frozenset[str]:
    return key_endpoints(ctx.services.catalog, names)


def _expiry(message) -> datetime | None:
    if not message.HasField("expires_at"):
        return None
    at = message.expires_at.ToDatetime(tzinfo=now().tzinfo)
    if at <= now():
        raise invalid_argument(f"expires_at {at.isoformat()} is in the past.")
    return at


def post_keys(ctx: RequestContext, request):
    if not request.keys:
        raise invalid_argument("Give at least one key in 'keys'.")
    user_id = ctx.target.user_id
    response = ctx.spec.output_type()
    with ctx.services.transaction() as conn:
        for key in request.keys:
            # No type but an app, as in Clarifai's documented cURL example: an API key.
            kind = key_type(key.type or ("app_specific_key" if key.apps else ""))
            app, resources = None, None
            if kind is CredentialKind.APP_KEY:
                if len(key.apps) != 1:
                    raise invalid_argument("An app-specific key names exactly one app in 'apps'.")
                app = _manageable_app(conn, ctx, key.apps[0])
            elif orgs.is_organization(conn, user_id):
                raise invalid_argument(
                    "An organization has no Personal Access Tokens: members use their own "
                    "(user_id 'me')."
                )
            elif key.apps:  # a fine-grained PAT: limited to these apps and organizations
                resources = limits_from_apps(conn, user_id, key.apps)
            record, secret = key_service.create_key(
                conn,
                ctx.services.hasher,
                kind=kind,
                # An app key belongs to its app's owner (an organization's keys to it).
                user_id=app.user_id if app else user_id,
                app=app,
                description=key.description,
                scopes=_scopes(ctx, key.scopes),
                endpoints=_endpoints(ctx, key.endpoints),
                expires_at=_expiry(key),
                resources=resources,
                actor=ctx.actor(),
            )
            response.keys.append(key_message(record, secret=secret))
            _note(ctx, record, secret)
    return response


def limits_from_apps(conn, user_id: str, named) -> KeyResources:
    """A PAT's `apps` (PostKeys, PatchKeys): each app of the user (`user_id` empty or `me`)
    or of one of its organizations, or `{user_id: ORG, id: "*"}` for a whole organization."""
    app_names, org_ids = [], []
    for app in named:
        owner = app.user_id if app.user_id not in ("", ME) else user_id
        if app.id == WHOLE_ORG:
            org_ids.append(owner)
        else:
            app_names.append(f"{owner}/{app.id}")
    return key_service.key_resources(conn, user_id, app_names, org_ids)


def resources_json(record: KeyRecord) -> dict | None:
    """A key's limits as REST answers, the CLI and the portal show them; None: all."""
    return record.resources.names() if record.resources is not None else None


def _note(ctx: RequestContext, record: KeyRecord, shown_as: str) -> None:
    """The REST extension fields of one key an answer names by `shown_as` (its secret when
    just created, else its public id)."""
    details = ctx.extras.setdefault("key_details", {})
    details[shown_as] = {
        "masked": record.masked,
        "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
        "resources": resources_json(record),
    }


def _manageable_app(conn, ctx: RequestContext, named) -> AppRecord:
    """The one app an app-specific key names, authorized as PostKeys on that app would be
    (the caller's own, or an app of an organization the caller administers); any other
    app, or a refusal, answers alike, so what exists elsewhere does not leak."""
    owner = ctx.target.user_id if named.user_id in ("", ME) else named.user_id
    missing = does_not_exist(f"App '{named.id}' was not found among the apps you manage.")
    try:
        ctx.authorize_app(named.id, owner)
    except ApiError:
        raise missing from None
    app = apps.get(conn, owner, named.id)
    if app is None:
        raise missing
    return app


def _matches(record: KeyRecord, scopes: frozenset[str], endpoints: frozenset[str]) -> bool:
    return scopes <= set(record.scopes) and endpoints <= set(record.endpoints)


def list_keys(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    kind = key_type(request.type).value if request.type else None
    wanted_scopes = _scopes(ctx, request.scopes) if request.scopes else frozenset()
    wanted_endpoints = _endpoints(ctx, request.endpoints)
    with ctx.services.engine.connect() as conn:
        found = keys.list_for_user(
            conn,
            ctx.target.user_id,
            kind=kind,
            not_expired_at=now() if request.not_expired else None,
            offset=0 if (wanted_scopes or wanted_endpoints) else offset,
            limit=10**9 if (wanted_scopes or wanted_endpoints) else limit,
        )
    if wanted_scopes or wanted_endpoints:
        found = [k for k in found if _matches(k, wanted_scopes, wanted_endpoints)]
        found = found[offset : offset + limit]
    return ctx.spec.output_type(keys=[key_message(k) for k in note_details(ctx, found)])


def list_app_keys(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    with ctx.services.engine.connect() as conn:
        app = apps.get(conn, ctx.target.user_id, ctx.target.app_id)
        if app is None:
            raise does_not_exist()
        found = keys.list_for_user(
            conn, ctx.target.user_id, app_pk=app.pk, offset=offset, limit=limit
        )
    return ctx.spec.output_type(keys=[key_message(k) for k in note_details(ctx, found)])


def note_details(ctx: RequestContext, records: list[KeyRecord]) -> list[KeyRecord]:
    """The proto's Key has no masked form or last use: REST answers add them (see
    transports/rest.py); gRPC callers find them in the CLI and the portal."""
    for record in records:
        _note(ctx, record, record.public_id)
    note_limits(ctx, records)
    return records


def find_key(conn, ctx: RequestContext, key_id: str) -> KeyRecord:
    """A key of the target user by public id, or by its secret as clients may send it."""
    return key_service.find_key(conn, ctx.services.hasher, ctx.target.user_id, key_id)


def get_key(ctx: RequestContext, request):
    with ctx.services.engine.connect() as conn:
        record = find_key(conn, ctx, request.key_id)
    note_details(ctx, [record])
    return ctx.spec.output_type(key=key_message(record))


def delete_key(ctx: RequestContext, request):
    with ctx.services.transaction() as conn:
        record = find_key(conn, ctx, request.key_id)
        key_service.delete_key(conn, record, actor=ctx.actor())
    return ctx.spec.output_type()


def patch_keys(ctx: RequestContext, request):
    if request.action not in ("", "overwrite"):
        raise invalid_argument(f"Unsupported action '{request.action}': use 'overwrite'.")
    response = ctx.spec.output_type()
    with ctx.services.transaction() as conn:
        for key in request.keys:
            record = find_key(conn, ctx, key.id)
            patched_record = key_service.patch_key(
                conn,
                record,
                description=key.description,
                scopes=_scopes(ctx, key.scopes),
                endpoints=_endpoints(ctx, key.endpoints),
                expires_at=_expiry(key),
                actor=ctx.actor(),
            )
            if key.apps and patched_record.kind == CredentialKind.PAT.value:
                # Named apps limit the PAT to them; none given keeps its limits (widening
                # takes PUT .../resources with all_resources, never an omission).
                patched_record = key_service.set_key_resources(
                    conn,
                    patched_record,
                    limits_from_apps(conn, patched_record.user_id, key.apps),
                    actor=ctx.actor(),
                )
            response.keys.append(key_message(patched_record))
            _note(ctx, patched_record, patched_record.public_id)
    return response


HANDLERS = {
    "PostKeys": Handler(post_keys),
    "ListKeys": Handler(list_keys),
    "ListAppKeys": Handler(list_app_keys),
    "GetKey": Handler(get_key),
    "DeleteKey": Handler(delete_key),
    "PatchKeys": Handler(patch_keys),
}
