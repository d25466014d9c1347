"""An organization's token policy and its members' token requests (README, "Organization
policies"): every member sees the policy; its admins change it and approve or deny members'
fine-grained tokens. Each step is the extension method the REST routes serve, dispatched
for the session, so the page and the API cannot disagree."""

from __future__ import annotations

from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from starlette.responses import Response

from scopegate.contract import extensions as ext
from scopegate.contract.extensions import MethodSpec
from scopegate.contract.status import ApiError
from scopegate.portal.forms import text
from scopegate.portal.page import Page, signed_in

_SWITCHES = ("require_expiry", "require_fine_grained", "approval_required")


async def _call(page: Page, spec: MethodSpec, org_id: str, **extras: Any) -> dict:
    found: dict = {ext.PATH: {}, ext.BODY: {}, **extras}
    request = spec.input_type(user_app_id=resources_pb2.UserAppIDSet(user_id=org_id))
    await page.call(spec, request, extras=found)
    return found[ext.ANSWER]


async def _render(page: Page, org_id: str, policy: dict, error: ApiError | None = None):
    try:  # admins only: anyone else sees the policy, not the requests
        requests = (await _call(page, ext.LIST_TOKEN_REQUESTS, org_id))["token_requests"]
        admin = True
    except ApiError:
        requests, admin = [], False
    context = {
        "org_id": org_id,
        "policy": policy,
        "admin": admin,
        "requests": requests,
        "active": "orgs",
    }
    return page.render_form("org_policy.html", error, **context)


@signed_in
async def org_policy(page: Page) -> Response:
    org_id = page.request.path_params["org_id"]
    current = (await _call(page, ext.GET_ORG_POLICY, org_id))["policy"]
    if page.request.method == "GET":
        return await _render(page, org_id, current)
    days = text(page.form, "max_lifetime_days", 10)
    body: dict[str, Any] = {name: page.form.get(name) == "on" for name in _SWITCHES}
    body["max_lifetime_days"] = int(days) if days.isdigit() else (None if not days else -1)
    try:
        await _call(page, ext.PUT_ORG_POLICY, org_id, **{ext.BODY: body})
    except ApiError as error:
        return await _render(page, org_id, {**current, **body}, error)
    return page.redirect(f"/organizations/{org_id}/policy", "policy-saved")


@signed_in
async def decide_token(page: Page) -> Response:
    org_id, key_id = page.request.path_params["org_id"], page.request.path_params["key_id"]
    decision = "approve" if page.form.get("decision") == "approve" else "deny"
    body = {"decision": decision, "reason": text(page.form, "reason", 1000)}
    await _call(
        page, ext.DECIDE_TOKEN_REQUEST, org_id, **{ext.PATH: {"key_id": key_id}, ext.BODY: body}
    )
    return page.redirect(f"/organizations/{org_id}/policy", "token-decided")
