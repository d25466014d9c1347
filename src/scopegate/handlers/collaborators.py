"""PostCollaborators, ListCollaborators, PatchCollaborators, DeleteCollaborators,
ListCollaborations. A change to a grant takes effect like a key revocation: at once here,
within the change-log poll interval elsewhere."""

from __future__ import annotations

from collections.abc import Callable

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.context import RequestContext
from scopegate.contract.status import invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.convert import timestamp
from scopegate.handlers.paging import offset_limit
from scopegate.handlers.target_app import reading_app, target_app
from scopegate.services.collaborators import (
    add_collaborator,
    patch_collaborator,
    remove_collaborator,
)
from scopegate.services.users import find_person
from scopegate.store import collaborators, users
from scopegate.store.collaborators import CollaboratorRecord


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


def _owner(conn, app) -> resources_pb2.User:
    owner = users.get(conn, app.user_id)
    return resources_pb2.User(id=app.user_id, primary_email=owner.email if owner else "")


def _grant_each(ctx: RequestContext, request, grant: Callable[..., CollaboratorRecord]):
    """Apply `grant(conn, app, collaborator, scopes=, endpoints=, names=, actor=)` to each
    collaborator of the request in one transaction; answers the grants and the app's owner."""
    response = ctx.spec.output_type()
    with ctx.services.transaction() as conn:
        app = target_app(conn, ctx)
        for collaborator in request.collaborators:
            record = grant(
                conn,
                app,
                collaborator,
                scopes=collaborator.scopes,
                endpoints=collaborator.endpoints,
                names=ctx.services.grant_names(),
                actor=ctx.actor(),
            )
            response.collaborators.append(_message(record))
        response.app_owner.CopyFrom(_owner(conn, app))
    return response


def post_collaborators(ctx: RequestContext, request):
    if not request.collaborators:
        raise invalid_argument("Give at least one collaborator in 'collaborators'.")

    def add(conn, app, collaborator, **grant):
        person = find_person(conn, collaborator.user.id, collaborator.user.primary_email)
        return add_collaborator(conn, app, person, **grant)

    return _grant_each(ctx, request, add)


def list_collaborators(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    with reading_app(ctx) as (conn, app):
        found = collaborators.for_app(conn, app.pk, offset=offset, limit=limit)
        owner = _owner(conn, app)
    return ctx.spec.output_type(collaborators=[_message(c) for c in found], app_owner=owner)


def patch_collaborators(ctx: RequestContext, request):
    if request.action not in ("", "overwrite"):
        raise invalid_argument(f"Unsupported action '{request.action}': use 'overwrite'.")

    def patch(conn, app, collaborator, **grant):
        # Named by collaborator id, user id or email.
        key = collaborator.id or collaborator.user.id or collaborator.user.primary_email
        return patch_collaborator(conn, app, key, **grant)

    return _grant_each(ctx, request, patch)


def delete_collaborators(ctx: RequestContext, request):
    wanted = [*request.collaborator_ids, *request.user_emails]
    if not wanted:
        raise invalid_argument("Name collaborators by collaborator_ids or user_emails.")
    with ctx.services.transaction() as conn:
        app = target_app(conn, ctx)
        for key in wanted:
            remove_collaborator(conn, app, key, actor=ctx.actor())
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
