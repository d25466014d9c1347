"""PatchApp (singular, as the clarifai SDK's `User.patch_app` calls it): one app's name,
description and visibility, the fields scopegate stores. Any other field given is refused
(CONN_INVALID_REQUEST naming it) rather than dropped: nothing is answered as kept that is not.
"""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.context import RequestContext
from scopegate.contract.status import invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.apps import patch_one

STORED = frozenset({"id", "user_id", "name", "description", "visibility"})
# What every app here has: no workflow runs on inputs. The SDK names it as `base_workflow`.
EMPTY_WORKFLOW = "Empty"
ACTIONS = ("overwrite", "merge", "remove")


def _unstored(app: resources_pb2.App) -> list[str]:
    given = [field.name for field, _ in app.ListFields() if field.name not in STORED]
    if "default_workflow" in given and app.default_workflow.id == EMPTY_WORKFLOW:
        given.remove("default_workflow")
    if app.default_workflow_id == EMPTY_WORKFLOW and "default_workflow_id" in given:
        given.remove("default_workflow_id")
    return given


def _check(ctx: RequestContext, request) -> str:
    """The app to patch, once the request asks only for what can be stored."""
    if request.action not in ("", *ACTIONS):
        raise invalid_argument(f"Unsupported action '{request.action}': use {', '.join(ACTIONS)}.")
    wanted = request.app
    if wanted.id and ctx.target.app_id and wanted.id != ctx.target.app_id:
        raise invalid_argument(
            f"app.id '{wanted.id}' differs from user_app_id.app_id '{ctx.target.app_id}': "
            "name the app once, or twice alike."
        )
    if wanted.user_id and wanted.user_id != ctx.target.user_id:
        raise invalid_argument("app.user_id differs from the user the request names.")
    app_id = wanted.id or ctx.target.app_id
    if not app_id:
        raise invalid_argument("Name the app: user_app_id.app_id or app.id.")
    unstored = _unstored(wanted)
    if request.metadata_action.ListFields():
        unstored.append("metadata_action")
    if request.reindex:
        unstored.append("reindex")  # nothing is indexed here
    if unstored:
        raise invalid_argument(
            f"scopegate does not store {', '.join(sorted(unstored))} for an app; it keeps "
            "name, description and visibility. Nothing was changed."
        )
    if request.action == "remove" and (wanted.name or wanted.visibility.gettable):
        raise invalid_argument(
            "action 'remove' clears the description only: an app always has a name and a "
            "visibility."
        )
    return app_id


def patch_app(ctx: RequestContext, request):
    """`overwrite` (the default, as PatchApps): the description as given (empty clears
    it); `merge`: only fields given change; `remove`: a description given is cleared. The
    name and the visibility change only where given."""
    app_id = _check(ctx, request)
    with ctx.services.transaction() as conn:
        patched = patch_one(conn, ctx, app_id, request.app, request.action)
    return ctx.spec.output_type(app=patched)


HANDLERS = {"PatchApp": Handler(patch_app)}
