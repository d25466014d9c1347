"""PostCollaborators, ListCollaborators, PatchCollaborators, DeleteCollaborators,
ListCollaborations. A change to a grant takes effect like a key revocation: at once here,
within the change-log poll interval elsewhere."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2
from sqlalchemy.exc import IntegrityError

from scopegate.auth import tokens
from scopegate.context import RequestContext
from scopegate.contract.status import does_not_exist, invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.convert import timestamp
from scopegate.handlers.paging import offset_limit
from scopegate.services import accounts
from scopegate.store import apps, changes, collaborators, users
from scopegate.store.collaborators import CollaboratorRecord


def _app(conn, ctx: RequestContext):
    app = apps.get(conn, ctx.target.user_id, ctx.target.app_id) if ctx.target.app_id else None
    if app is None:
        raise does_not_exist()
    return app


def _message(record: CollaboratorRecord) -> resources_pb2.Collaborator:
    return resources_pb2.Collaborator(
        id=record.public_id,
        app=resources_pb2.App(id=record.app_id, user_id=record.owner_user_id),
        user=resources_pb2.User(id=record.user_id, primary_email=record.email),
        scopes=list(record.scopes),
        endpoints=list(record.endpoints),
        created_at=timestamp(record.created_at),
        modified_at=timestamp(record.modified_at),
    )


def _grant(ctx: RequestContext, collaborator) -> tuple[frozenset[str], frozenset[str]]:
    granted_scopes = accounts.key_scopes(ctx.services.scopes, collaborator.scopes)
    granted_endpoints = accounts.key_endpoints(ctx.services.catalog, collaborator.endpoints)
    if not granted_scopes and not granted_endpoints:
        raise invalid_argument("Grant the collaborator at least one scope or endpoint.")
    return granted_scopes, granted_endpoints


def _changed(conn, ctx: RequestContext, app, action: str, who: str) -> None:
    changes.record(conn, "app", f"{app.user_id}/{app.app_id}")
    ctx.actor().record(conn, action, f"app:{app.user_id}/{app.app_id}", f"collaborator={who}")


def _owner(conn, app) -> resources_pb2.User:
    owner = users.get(conn, app.user_id)
    return resources_pb2.User(id=app.user_id, primary_email=owner.email if owner else "")


def post_collaborators(ctx: RequestContext, request):
    if not request.collaborators:
        raise invalid_argument("Give at least one collaborator in 'collaborators'.")
    response = ctx.spec.output_type()
    with ctx.services.engine.begin() as conn:
        app = _app(conn, ctx)
        for collaborator in request.collaborators:
            named = collaborator.user
            person = users.get(conn, named.id) if named.id else None
            if person is None and named.primary_email:
                person = users.get_by_email(conn, named.primary_email)
            if person is None or not person.is_person:
                raise does_not_exist("No user with that id or email; they must sign up first.")
            if person.user_id == app.user_id:
                raise invalid_argument("The app's owner cannot be its collaborator.")
            if collaborators.grant(conn, person.user_id, app.user_id, app.app_id):
                raise invalid_argument(f"{person.user_id} already collaborates on this app.")
            granted_scopes, granted_endpoints = _grant(ctx, collaborator)
            try:
                collaborators.add(
                    conn,
                    public_id=tokens.new_public_id(),
                    app_pk=app.pk,
                    user_id=person.user_id,
                    scopes=granted_scopes,
                    endpoints=granted_endpoints,
                )
            except IntegrityError:
                raise invalid_argument(f"{person.user_id} already collaborates.") from None
            _changed(conn, ctx, app, "collaborator.add", person.user_id)
            record = collaborators.grant(conn, person.user_id, app.user_id, app.app_id)
            response.collaborators.append(_message(record))
        response.app_owner.CopyFrom(_owner(conn, app))
    ctx.services.evict_app(app.user_id, app.app_id)
    return response


def list_collaborators(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    with ctx.services.engine.connect() as conn:
        app = _app(conn, ctx)
        found = collaborators.for_app(conn, app.pk, offset=offset, limit=limit)
        owner = _owner(conn, app)
    return ctx.spec.output_type(collaborators=[_message(c) for c in found], app_owner=owner)


def _find(conn, app, key: str) -> CollaboratorRecord:
    record = collaborators.find(conn, app.pk, key) if key else None
    if record is None:
        raise does_not_exist(f"'{key}' is not a collaborator of this app.")
    return record


def patch_collaborators(ctx: RequestContext, request):
    if request.action not in ("", "overwrite"):
        raise invalid_argument(f"Unsupported action '{request.action}': use 'overwrite'.")
    response = ctx.spec.output_type()
    with ctx.services.engine.begin() as conn:
        app = _app(conn, ctx)
        for collaborator in request.collaborators:
            key = collaborator.id or collaborator.user.id or collaborator.user.primary_email
            record = _find(conn, app, key)
            granted_scopes, granted_endpoints = _grant(ctx, collaborator)
            if not collaborators.set_grant(
                conn, app.pk, record.user_id, granted_scopes, granted_endpoints
            ):  # removed by a concurrent request since `_find`
                raise does_not_exist(f"'{key}' is not a collaborator of this app.")
            _changed(conn, ctx, app, "collaborator.patch", record.user_id)
            updated = collaborators.grant(conn, record.user_id, app.user_id, app.app_id)
            response.collaborators.append(_message(updated))
        response.app_owner.CopyFrom(_owner(conn, app))
    ctx.services.evict_app(app.user_id, app.app_id)
    return response


def delete_collaborators(ctx: RequestContext, request):
    wanted = [*request.collaborator_ids, *request.user_emails]
    if not wanted:
        raise invalid_argument("Name collaborators by collaborator_ids or user_emails.")
    with ctx.services.engine.begin() as conn:
        app = _app(conn, ctx)
        for key in wanted:
            record = _find(conn, app, key)
            if not collaborators.remove(conn, app.pk, record.user_id):  # a concurrent removal won
                raise does_not_exist(f"'{key}' is not a collaborator of this app.")
            _changed(conn, ctx, app, "collaborator.remove", record.user_id)
    ctx.services.evict_app(app.user_id, app.app_id)
    return ctx.spec.output_type()


def list_collaborations(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    response = ctx.spec.output_type()
    with ctx.services.engine.connect() as conn:
        for record in collaborators.for_user(conn, ctx.target.user_id, offset=offset, limit=limit):
            owner = users.get(conn, record.owner_user_id)
            response.collaborations.add(
                app=resources_pb2.App(id=record.app_id, user_id=record.owner_user_id),
                app_owner=resources_pb2.User(
                    id=record.owner_user_id, primary_email=owner.email if owner else ""
                ),
                scopes=list(record.scopes),
                endpoints=list(record.endpoints),
                created_at=timestamp(record.created_at),
            )
    return response


HANDLERS = {
    "PostCollaborators": Handler(post_collaborators),
    "ListCollaborators": Handler(list_collaborators),
    "PatchCollaborators": Handler(patch_collaborators),
    "DeleteCollaborators": Handler(delete_collaborators),
    "ListCollaborations": Handler(list_collaborations),
}
