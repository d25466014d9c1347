"""Apps: list, create (its default API key shown once), settings, visibility, delete."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from starlette.responses import Response

from scopegate.auth.policy import ME
from scopegate.contract.status import ApiError
from scopegate.portal.forms import text
from scopegate.portal.page import Page, signed_in
from scopegate.portal.session import BASE
from scopegate.portal.usage_reads import app_usage, with_recent_requests
from scopegate.portal.views_collaborators import list_collaborators
from scopegate.portal.views_keys import KeyPlace, list_keys

VISIBILITIES = [
    (resources_pb2.Visibility.PRIVATE, "Private", "only you and your collaborators"),
    (resources_pb2.Visibility.ORG, "Organization", "members of your organization"),
    (resources_pb2.Visibility.PUBLIC, "Public", "anyone with a PAT may read and predict"),
]
VISIBILITY_NAMES = {value: name for value, name, _ in VISIBILITIES}


def _ids(app_id: str = "") -> resources_pb2.UserAppIDSet:
    return resources_pb2.UserAppIDSet(user_id=ME, app_id=app_id)


def _visibility(raw: str) -> int:
    return int(raw) if raw.isdigit() else resources_pb2.Visibility.PRIVATE


@signed_in
async def apps(page: Page) -> Response:
    reply = await page.call(
        "ListApps", service_pb2.ListAppsRequest(user_app_id=_ids(), per_page=1000)
    )
    return page.render(
        "apps.html", apps=reply.apps, visibility_names=VISIBILITY_NAMES, active="apps"
    )


@signed_in
async def create_app(page: Page) -> Response:
    context = {"visibilities": VISIBILITIES, "active": "apps"}
    if page.request.method == "GET":
        values = {"app_id": "", "description": "", "visibility": resources_pb2.Visibility.PRIVATE}
        return page.render("app_form.html", values=values, **context)
    values = {
        "app_id": text(page.form, "app_id", 64),
        "description": text(page.form, "description", 500),
        "visibility": _visibility(text(page.form, "visibility", 4)),
    }
    try:
        reply = await page.call(
            "PostApps",
            service_pb2.PostAppsRequest(
                user_app_id=_ids(),
                apps=[
                    resources_pb2.App(
                        id=values["app_id"],
                        name=values["app_id"],
                        description=values["description"],
                        visibility=resources_pb2.Visibility(gettable=values["visibility"]),
                    )
                ],
            ),
        )
    except ApiError as error:
        return page.error("app_form.html", error, values=values, **context)
    app = reply.apps[0]
    return page.render(
        "secret.html",
        title="App created",
        heading=f"App “{app.id}” created",
        intro="This is the app's default API key: it has every scope, for this app only.",
        secret=app.metadata["default_api_key"],
        scopes=["All"],
        continue_url=f"{BASE}/apps/{app.id}",
        continue_label="Go to the app's settings",
        active="apps",
    )


@signed_in
async def app_settings(page: Page) -> Response:
    app_id = page.request.path_params["app_id"]
    reply = await page.call("GetApp", service_pb2.GetAppRequest(user_app_id=_ids(app_id)))
    keys = await with_recent_requests(page, await list_keys(page, KeyPlace.of(page)), app_id)
    collaborators = await list_collaborators(page, app_id)
    usage = await app_usage(page, app_id)
    return page.render(
        "app_settings.html",
        app=reply.app,
        keys=keys,
        collaborators=collaborators,
        usage=usage,
        visibilities=VISIBILITIES,
        visibility_names=VISIBILITY_NAMES,
        place=KeyPlace.of(page),
        active="apps",
    )


@signed_in
async def set_visibility(page: Page) -> Response:
    app_id = page.request.path_params["app_id"]
    visibility = _visibility(text(page.form, "visibility", 4))
    await page.call(
        "PatchApps",
        service_pb2.PatchAppsRequest(
            user_app_id=_ids(app_id),
            action="merge",
            apps=[
                resources_pb2.App(
                    id=app_id, visibility=resources_pb2.Visibility(gettable=visibility)
                )
            ],
        ),
    )
    return page.redirect(f"/apps/{app_id}", "visibility-saved")


@signed_in
async def delete_app(page: Page) -> Response:
    app_id = page.request.path_params["app_id"]
    if page.request.method == "GET":
        await page.call("GetApp", service_pb2.GetAppRequest(user_app_id=_ids(app_id)))
        return page.render(
            "confirm.html",
            title="Delete app",
            question=f"Delete the app “{app_id}”?",
            consequence="Its API keys stop working at once and its collaborators lose access. "
            "This cannot be undone.",
            action_label="Delete app",
            cancel_url=f"{BASE}/apps/{app_id}",
            active="apps",
        )
    await page.call("DeleteApp", service_pb2.DeleteAppRequest(user_app_id=_ids(app_id)))
    return page.redirect("/apps", "app-deleted")
