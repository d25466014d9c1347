"""An app's collaborators (add by email with scopes, edit, remove) and "Shared with me"."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from google.protobuf.message import Message
from starlette.responses import Response

from scopegate.auth.policy import ME
from scopegate.auth.principal import CredentialKind
from scopegate.contract.status import ApiError, does_not_exist
from scopegate.portal.forms import chosen_scopes, text
from scopegate.portal.page import Page, signed_in
from scopegate.portal.scope_picker import build_picker
from scopegate.portal.session import BASE


def _ids(app_id: str) -> resources_pb2.UserAppIDSet:
    return resources_pb2.UserAppIDSet(user_id=ME, app_id=app_id)


async def list_collaborators(page: Page, app_id: str) -> list[resources_pb2.Collaborator]:
    reply = await page.call(
        "ListCollaborators",
        service_pb2.ListCollaboratorsRequest(user_app_id=_ids(app_id), per_page=1000),
    )
    return list(reply.collaborators)


async def _render_form(page: Page, app_id: str, values: dict, error: ApiError | None):
    # Collaborators act on one app, so they may hold what an app's API key may hold.
    deps = await page.call(
        "ListScopes",
        service_pb2.ListScopesRequest(user_app_id=_ids(""), key_type=CredentialKind.APP_KEY.value),
    )
    context = {
        "app_id": app_id,
        "values": values,
        "picker": build_picker(deps.scope_deps, values["scopes"]),
        "cancel_url": f"{BASE}/apps/{app_id}",
        "active": "apps",
    }
    return page.render_form("collaborator_form.html", error, **context)


async def _submit(
    page: Page, app_id: str, values: dict, method: str, request: Message, notice: str
) -> Response:
    """Add or edit: back to the app's settings, or the form again with why it was refused."""
    try:
        await page.call(method, request)
    except ApiError as error:
        return await _render_form(page, app_id, values, error)
    return page.redirect(f"/apps/{app_id}", notice)


async def _find(page: Page, app_id: str) -> resources_pb2.Collaborator:
    wanted = page.request.path_params["collaborator_id"]
    for collaborator in await list_collaborators(page, app_id):
        if collaborator.id == wanted:
            return collaborator
    raise does_not_exist("No such collaborator on this app.")


@signed_in
async def add_collaborator(page: Page) -> Response:
    app_id = page.request.path_params["app_id"]
    if page.request.method == "GET":
        await page.call("GetApp", service_pb2.GetAppRequest(user_app_id=_ids(app_id)))
        return await _render_form(page, app_id, {"email": "", "scopes": []}, None)
    values = {"email": text(page.form, "email", 320), "scopes": chosen_scopes(page.form)}
    added = resources_pb2.Collaborator(
        user=resources_pb2.User(primary_email=values["email"]), scopes=values["scopes"]
    )
    request = service_pb2.PostCollaboratorsRequest(user_app_id=_ids(app_id), collaborators=[added])
    return await _submit(page, app_id, values, "PostCollaborators", request, "collaborator-added")


@signed_in
async def edit_collaborator(page: Page) -> Response:
    app_id = page.request.path_params["app_id"]
    current = await _find(page, app_id)
    base = {"email": current.user.primary_email, "user_id": current.user.id, "editing": True}
    if page.request.method == "GET":
        return await _render_form(page, app_id, {**base, "scopes": list(current.scopes)}, None)
    values = {**base, "scopes": chosen_scopes(page.form)}
    patch = resources_pb2.Collaborator(
        id=current.id, scopes=values["scopes"], endpoints=list(current.endpoints)
    )
    request = service_pb2.PatchCollaboratorsRequest(
        user_app_id=_ids(app_id), action="overwrite", collaborators=[patch]
    )
    return await _submit(page, app_id, values, "PatchCollaborators", request, "collaborator-saved")


@signed_in
async def remove_collaborator(page: Page) -> Response:
    app_id = page.request.path_params["app_id"]
    current = await _find(page, app_id)
    if page.request.method == "GET":
        who = current.user.primary_email or current.user.id
        return page.render(
            "confirm.html",
            title="Remove collaborator",
            question=f"Remove {who} from the app “{app_id}”?",
            consequence="Their credentials stop reaching this app at once.",
            action_label="Remove collaborator",
            cancel_url=f"{BASE}/apps/{app_id}",
            active="apps",
        )
    await page.call(
        "DeleteCollaborators",
        service_pb2.DeleteCollaboratorsRequest(
            user_app_id=_ids(app_id), collaborator_ids=[current.id]
        ),
    )
    return page.redirect(f"/apps/{app_id}", "collaborator-removed")


@signed_in
async def shared_with_me(page: Page) -> Response:
    reply = await page.call(
        "ListCollaborations",
        service_pb2.ListCollaborationsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=ME), per_page=1000
        ),
    )
    return page.render("shared.html", collaborations=reply.collaborations, active="shared")
