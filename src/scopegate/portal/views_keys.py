"""PATs (the Security page) and an app's API keys: list, create, edit, roll, delete.

Both kinds share these views; a `KeyPlace` says which kind and where its pages live. Every
step is a V2 method (ListKeys/ListAppKeys, PostKeys, GetKey, PatchKeys, DeleteKey) or the
ROLL extension handler, dispatched as the signed-in user.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from starlette.responses import Response

from scopegate.auth import explanations
from scopegate.auth.policy import ME
from scopegate.auth.principal import CredentialKind
from scopegate.contract import extensions as ext
from scopegate.contract.status import ApiError, does_not_exist
from scopegate.handlers.key_roll import AUTHORIZED_AS, ROLL
from scopegate.portal import key_limits_form
from scopegate.portal.forms import chosen_scopes, expiry_date, expiry_timestamp, text
from scopegate.portal.page import Page, signed_in
from scopegate.portal.render import when
from scopegate.portal.scope_picker import build_picker
from scopegate.portal.session import BASE
from scopegate.portal.usage_reads import with_recent_requests
from scopegate.store import leaks, refusals

GRACE_CHOICES = [
    (0, "Stop the old secret now"),
    (3600, "Keep the old secret working for 1 hour"),
    (86400, "Keep the old secret working for 1 day"),
    (7 * 86400, "Keep the old secret working for 7 days"),
]


@dataclass(frozen=True, slots=True)
class KeyPlace:
    kind: CredentialKind
    app_id: str = ""

    @classmethod
    def of(cls, page: Page) -> KeyPlace:
        app_id = page.request.path_params.get("app_id", "")
        return cls(CredentialKind.APP_KEY if app_id else CredentialKind.PAT, app_id)

    @property
    def noun(self) -> str:
        return "API key" if self.app_id else "Personal Access Token"

    @property
    def list_path(self) -> str:
        return f"/apps/{self.app_id}" if self.app_id else "/security"

    @property
    def keys_url(self) -> str:
        return f"{BASE}/apps/{self.app_id}/keys" if self.app_id else f"{BASE}/security/keys"

    def ids(self) -> resources_pb2.UserAppIDSet:
        return resources_pb2.UserAppIDSet(user_id=ME)


def _template_context(place: KeyPlace) -> dict:
    return {
        "place": place,
        "list_url": f"{BASE}{place.list_path}",
        "active": "apps" if place.app_id else "security",
    }


async def list_keys(page: Page, place: KeyPlace) -> list[dict]:
    """Keys with their masked secret and last use (which the proto's Key lacks: the
    handler leaves them in the call's extras, as it does for REST answers)."""
    extras: dict = {}
    if place.app_id:
        reply = await page.call(
            "ListAppKeys",
            service_pb2.ListAppKeysRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id=ME, app_id=place.app_id),
                per_page=1000,
            ),
            extras=extras,
        )
    else:
        reply = await page.call(
            "ListKeys",
            service_pb2.ListKeysRequest(
                user_app_id=place.ids(), type=CredentialKind.PAT.value, per_page=1000
            ),
            extras=extras,
        )
    details = extras.get("key_details", {})
    return [{"key": key, **details.get(key.id, {})} for key in reply.keys]


async def _scope_deps(page: Page, place: KeyPlace):
    reply = await page.call(
        "ListScopes",
        service_pb2.ListScopesRequest(user_app_id=place.ids(), key_type=place.kind.value),
    )
    return reply.scope_deps


async def named_key(page: Page) -> tuple[KeyPlace, resources_pb2.Key]:
    """Where the URL says its key lives, and that key if it belongs there."""
    place = KeyPlace.of(page)
    reply = await page.call(
        "GetKey",
        service_pb2.GetKeyRequest(
            user_app_id=place.ids(), key_id=page.request.path_params["key_id"]
        ),
    )
    key = reply.key
    # A PAT's `apps` are its fine-grained limits, not where it lives.
    in_app = key.apps[0].id if key.apps and key.type != CredentialKind.PAT.value else ""
    if key.type != place.kind.value or in_app != place.app_id:
        raise does_not_exist("No such key here.")
    return place, key


@signed_in
async def security(page: Page) -> Response:
    place = KeyPlace(CredentialKind.PAT)
    keys = await with_recent_requests(page, await list_keys(page, place))
    leaked, refused = await asyncio.to_thread(_history, page)
    return page.render(
        "security.html", keys=keys, leaked=leaked, refused=refused, **_template_context(place)
    )


def _history(page: Page) -> tuple[list[leaks.LeakRecord], list[dict]]:
    """The signed-in user's secrets revoked because they leaked, and its credentials'
    recent refusals with why and what to do (auth/explanations.py)."""
    with page.portal.dispatcher.services.engine.connect() as conn:
        leaked = leaks.for_user(conn, page.user_id)
        refused = refusals.for_caller(conn, page.user_id)
    return leaked, [{"record": r, "fix": explanations.fix(r.layer, r.missing)} for r in refused]


async def _render_form(page: Page, place: KeyPlace, *, values: dict, error: ApiError | None):
    picker = build_picker(await _scope_deps(page, place), values["scopes"])
    context = {**_template_context(place), "values": values, "picker": picker}
    return page.render_form("key_form.html", error, **context)


def _form_values(page: Page) -> dict:
    return {
        "description": text(page.form, "description", 500),
        "scopes": chosen_scopes(page.form),
        "expires_on": text(page.form, "expires_on", 20),
        "resources": text(page.form, "resources", 5000),
        **key_limits_form.form_values(page),
    }


def _limited_to(resources: str) -> list[resources_pb2.App]:
    """A fine-grained PAT's limits as typed, one per line or comma: `APP` (one of yours),
    `USER/APP` (an organization's app) or `ORG/*` (a whole organization)."""
    named = []
    for item in resources.replace(",", "\n").split():
        owner, _, app_id = item.rpartition("/")
        named.append(resources_pb2.App(user_id=owner or ME, id=app_id))
    return named


def _resources_text(key: resources_pb2.Key) -> str:
    if key.type != CredentialKind.PAT.value:
        return ""
    return "\n".join(f"{app.user_id}/{app.id}" for app in key.apps)


def _secret_page(page: Page, place: KeyPlace, key: resources_pb2.Key, heading: str) -> Response:
    return page.render(
        "secret.html",
        title=heading,
        heading=heading,
        intro=f"{key.description or place.noun}",
        secret=key.id,
        scopes=list(key.scopes),
        expires=when(key.expires_at, "never") if key.HasField("expires_at") else "never",
        continue_url=f"{BASE}{place.list_path}",
        continue_label="Back to the list",
        active="apps" if place.app_id else "security",
    )


@signed_in
async def create_key(page: Page) -> Response:
    place = KeyPlace.of(page)
    if page.request.method == "GET":
        values = {"description": "", "scopes": [], "expires_on": "", "resources": ""}
        values.update(key_limits_form.EMPTY)
        return await _render_form(page, place, values=values, error=None)
    values = _form_values(page)
    try:
        key = resources_pb2.Key(
            description=values["description"],
            scopes=values["scopes"],
            type=place.kind.value,
        )
        expires = expiry_timestamp(values["expires_on"])
        if expires is not None:
            key.expires_at.CopyFrom(expires)
        if place.app_id:
            key.apps.append(resources_pb2.App(id=place.app_id, user_id=ME))
        else:
            key.apps.extend(_limited_to(values["resources"]))
        if key_limits_form.given(values):
            key_limits_form.body(values)  # a form that cannot be read creates no key
        reply = await page.call(
            "PostKeys", service_pb2.PostKeysRequest(user_app_id=place.ids(), keys=[key])
        )
        if key_limits_form.given(values):
            # Named by its secret here: in this call only, never in a URL.
            await key_limits_form.write(page, reply.keys[0].id, values)
    except ApiError as error:
        return await _render_form(page, place, values=values, error=error)
    return _secret_page(page, place, reply.keys[0], f"New {place.noun} created")


@signed_in
async def edit_key(page: Page) -> Response:
    place, current = await named_key(page)
    if page.request.method == "GET":
        values = {
            "description": current.description,
            "scopes": list(current.scopes),
            "expires_on": expiry_date(
                current.expires_at if current.HasField("expires_at") else None
            ),
            "key_id": current.id,
            "resources": _resources_text(current),
            **await key_limits_form.read(page, current.id),
        }
        return await _render_form(page, place, values=values, error=None)
    values = {**_form_values(page), "key_id": current.id}
    try:
        patch = resources_pb2.Key(
            id=current.id,
            description=values["description"],
            scopes=values["scopes"],
            # The form does not show endpoints: keep the key's own.
            endpoints=list(current.endpoints),
        )
        unchanged = values["expires_on"] and values["expires_on"] == expiry_date(
            current.expires_at if current.HasField("expires_at") else None
        )
        if unchanged:
            patch.expires_at.CopyFrom(current.expires_at)  # keep the exact instant
        else:
            expires = expiry_timestamp(values["expires_on"])
            if expires is not None:
                patch.expires_at.CopyFrom(expires)
        if not place.app_id:
            patch.apps.extend(_limited_to(values["resources"]))
        await page.call(
            "PatchKeys",
            service_pb2.PatchKeysRequest(user_app_id=place.ids(), keys=[patch], action="overwrite"),
        )
        if not place.app_id and not patch.apps and _resources_text(current):
            await _lift_limits(page, current.id)  # emptied: all resources again
        await key_limits_form.write(page, current.id, values)
    except ApiError as error:
        return await _render_form(page, place, values=values, error=error)
    return page.redirect(place.list_path, "key-saved")


async def _lift_limits(page: Page, key_id: str) -> None:
    await page.call(
        ext.PUT_KEY_RESOURCES,
        ext.ExtensionRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=ME)),
        extras={ext.PATH: {"key_id": key_id}, ext.BODY: {"all_resources": True}},
    )


@signed_in
async def roll_key(page: Page) -> Response:
    place, key = await named_key(page)
    context = {**_template_context(place), "key": key, "grace_choices": GRACE_CHOICES}
    if page.request.method == "GET":
        return page.render("key_roll.html", grace=0, **context)
    raw = text(page.form, "grace_seconds", 20)
    grace = int(raw) if raw.isdigit() else -1
    try:
        # The roll extension handler, authorized as PatchKeys: the REST roll route's path.
        reply = await page.call(
            AUTHORIZED_AS,
            service_pb2.PatchKeysRequest(user_app_id=place.ids()),
            handler=ROLL,
            extras={"key_id": key.id, "grace_seconds": grace},
        )
    except ApiError as error:
        return page.error("key_roll.html", error, grace=grace, **context)
    return _secret_page(page, place, reply.keys[0], f"{place.noun} rolled")


@signed_in
async def delete_key(page: Page) -> Response:
    place, key = await named_key(page)
    if page.request.method == "GET":
        return page.render(
            "confirm.html",
            title=f"Delete {place.noun}",
            question=f"Delete the {place.noun} “{key.description or key.id}”?",
            consequence="Anything using its secret stops working at once. This cannot be undone.",
            action_label=f"Delete {place.noun}",
            cancel_url=f"{BASE}{place.list_path}",
            **_template_context(place),
        )
    await page.call(
        "DeleteKey", service_pb2.DeleteKeyRequest(user_app_id=place.ids(), key_id=key.id)
    )
    return page.redirect(place.list_path, "key-deleted")
