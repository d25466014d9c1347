"""PostApps, ListApps, GetApp, PatchApps, DeleteApp."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2
from sqlalchemy import Connection

from scopegate.auth.roles import OrgRole, parse_org_role
from scopegate.context import RequestContext
from scopegate.contract.status import does_not_exist, invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.convert import app_message
from scopegate.handlers.paging import offset_limit
from scopegate.services import apps as app_service
from scopegate.store import apps, orgs

VISIBILITIES = frozenset(resources_pb2.Visibility.Gettable.values())
ORG_VISIBLE = resources_pb2.Visibility.ORG
_SEES_ALL_ORG_APPS = frozenset({OrgRole.ADMIN, OrgRole.ORG_CONTRIBUTOR, OrgRole.ORG_USER})


def post_apps(ctx: RequestContext, request):
    if not request.apps:
        raise invalid_argument("Give at least one app in 'apps'.")
    response = ctx.spec.output_type()
    # A miss cached before the app existed (an organization's member asking for it) ends
    # at commit, with the other changes the services log.
    with ctx.services.transaction() as conn:
        for app in request.apps:
            visibility = app.visibility.gettable or resources_pb2.Visibility.PRIVATE
            if visibility not in VISIBILITIES:
                raise invalid_argument(f"Unknown visibility {visibility}.")
            record, default_key = app_service.create_app(
                conn,
                ctx.services.hasher,
                ctx.target.user_id,
                app.id,
                name=app.name,
                description=app.description,
                visibility=visibility,
                actor=ctx.actor(),
            )
            created = app_message(record)
            # Shown once: the proto's App has no key field, so the secret rides in metadata.
            created.metadata.update({"default_api_key": default_key})
            response.apps.append(created)
    return response


def list_apps(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    caller = ctx.principal.user_id if ctx.principal else ""
    with ctx.services.engine.connect() as conn:
        if caller == ctx.target.user_id or (ctx.principal and ctx.principal.app):
            found = apps.list_for_user(conn, ctx.target.user_id, offset=offset, limit=limit)
        else:
            # Only an organization's members get here (see relations.py): they see the
            # apps their role, their teams or the apps' ORG visibility open to them.
            role = parse_org_role(orgs.role_of(conn, ctx.target.user_id, caller) or "")
            found = apps.list_for_user(conn, ctx.target.user_id, offset=0, limit=10**9)
            if role not in _SEES_ALL_ORG_APPS:
                teams = orgs.team_app_pks(conn, ctx.target.user_id, caller)
                found = [a for a in found if a.pk in teams or a.visibility >= ORG_VISIBLE]
            found = found[offset : offset + limit]
    return ctx.spec.output_type(apps=[app_message(a) for a in found])


def _app(conn, ctx: RequestContext):
    if not ctx.target.app_id:
        raise invalid_argument("Name the app: user_app_id.app_id is empty.")
    app = apps.get(conn, ctx.target.user_id, ctx.target.app_id)
    if app is None:
        raise does_not_exist()
    return app


def get_app(ctx: RequestContext, request):
    with ctx.services.engine.connect() as conn:
        app = _app(conn, ctx)
    return ctx.spec.output_type(app=app_message(app))


def patch_apps(ctx: RequestContext, request):
    """Overwrite (or merge: only fields given) name, description and visibility."""
    if request.action not in ("", "overwrite", "merge"):
        raise invalid_argument(f"Unsupported action '{request.action}': use overwrite or merge.")
    if not request.apps:
        raise invalid_argument("Give at least one app in 'apps'.")
    response = ctx.spec.output_type()
    with ctx.services.transaction() as conn:
        for patch in request.apps:
            app_id = patch.id or ctx.target.app_id
            response.apps.append(patch_one(conn, ctx, app_id, patch, request.action))
    return response


def patch_one(
    conn: Connection, ctx: RequestContext, app_id: str, patch: resources_pb2.App, action: str
) -> resources_pb2.App:
    """Patch one app of the target's owner (PatchApps, PatchApp): `overwrite` (or "") sets
    the description as given (empty clears it), `merge` only if given, `remove` clears it
    if given; the name and the visibility change only if given."""
    # Authorized on the account; each app patched must be reachable for this method too
    # (an organization role may create apps it cannot patch).
    ctx.authorize_app(app_id)
    app = apps.get(conn, ctx.target.user_id, app_id)
    if app is None:
        raise does_not_exist()
    visibility = patch.visibility.gettable or app.visibility
    if visibility not in VISIBILITIES:
        raise invalid_argument(f"Unknown visibility {visibility}.")
    if action == "remove":
        description = "" if patch.description else app.description
    elif action == "merge":
        description = patch.description or app.description
    else:
        description = patch.description
    patched = app_service.patch_app(
        conn,
        app,
        name=patch.name or app.name,  # an app always has a name
        description=description,
        visibility=visibility,
        actor=ctx.actor(),
    )
    return app_message(patched)


def delete_app(ctx: RequestContext, request):
    with ctx.services.transaction() as conn:
        app_service.delete_app(conn, _app(conn, ctx), actor=ctx.actor())
    return ctx.spec.output_type()


HANDLERS = {
    "PostApps": Handler(post_apps),
    "ListApps": Handler(list_apps),
    "GetApp": Handler(get_app),
    "DeleteApp": Handler(delete_app),
    "PatchApps": Handler(patch_apps),
}
