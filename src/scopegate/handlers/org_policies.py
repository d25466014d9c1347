"""Organization token policies and token requests: the extension methods of
contract/extensions.py (README, "Organization policies"). Authorized before they run:
membership to read the policy, `admin` to change it or decide on members' tokens.

- GET|PUT /scopegate/v1/organizations/{org}/policy: `{"policy": {max_lifetime_days,
  require_expiry, require_fine_grained, approval_required}}`; PUT changes the fields given.
- GET .../token-requests: members' fine-grained tokens naming the organization, with state.
- POST .../token-requests/{key_id}: `{"decision": "approve"|"deny", "reason": "..."}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from google.protobuf.message import Message

from scopegate.context import RequestContext
from scopegate.contract import extensions as ext
from scopegate.contract.status import ApiError, C
from scopegate.handlers import Handler
from scopegate.services import org_policies, organizations
from scopegate.services.org_policies import TokenRequest, policy_json

Document = dict[str, Any]
_BOOLEANS = ("require_expiry", "require_fine_grained", "approval_required")


def _bad(details: str) -> ApiError:
    return ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", details)


def request_json(request: TokenRequest) -> Document:
    key = request.key
    return {
        "key_id": key.public_id,
        "user_id": key.user_id,
        "description": key.description,
        "masked": key.masked,
        "resources": key.resources.names() if key.resources is not None else None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "state": request.state,
        "reason": request.reason,
    }


def _answers(operation: Callable[[RequestContext], Document]) -> Handler:
    def handle(ctx: RequestContext, _request: Message) -> Message:
        ctx.extras[ext.ANSWER] = operation(ctx)
        return ctx.spec.output_type()

    return Handler(handle)


def _org(conn, ctx: RequestContext) -> str:
    organizations.get_org(conn, ctx.target.user_id)  # a person is no organization
    return ctx.target.user_id


def _get(ctx: RequestContext) -> Document:
    with ctx.services.engine.connect() as conn:
        org_id = _org(conn, ctx)
        return {
            "organization_id": org_id,
            "policy": policy_json(org_policies.policy_of(conn, org_id)),
        }


def _put(ctx: RequestContext) -> Document:
    body = ctx.extras.get(ext.BODY) or {}
    unknown = set(body) - {"max_lifetime_days", *_BOOLEANS}
    if unknown:
        raise _bad(
            f"Unknown fields: {', '.join(sorted(unknown))}. Give max_lifetime_days (days, or "
            f"null for none) and any of {', '.join(_BOOLEANS)} (true or false)."
        )
    changes: dict[str, Any] = {}
    if "max_lifetime_days" in body:
        days = body["max_lifetime_days"]
        if days is not None and (not isinstance(days, int) or isinstance(days, bool)):
            raise _bad("max_lifetime_days must be a whole number of days, or null for none.")
        changes["max_lifetime_days"] = days
    for name in _BOOLEANS:
        if name in body:
            if not isinstance(body[name], bool):
                raise _bad(f"{name} must be true or false.")
            changes[name] = body[name]
    with ctx.services.transaction() as conn:
        org_id = _org(conn, ctx)
        policy = replace(org_policies.policy_of(conn, org_id), **changes)
        org_policies.set_policy(conn, org_id, policy, ctx.actor())
    return {"organization_id": org_id, "policy": policy_json(policy)}


def _list(ctx: RequestContext) -> Document:
    with ctx.services.engine.connect() as conn:
        org_id = _org(conn, ctx)
        found = org_policies.token_requests(conn, org_id)
    return {"organization_id": org_id, "token_requests": [request_json(r) for r in found]}


def _decide(ctx: RequestContext) -> Document:
    body = ctx.extras.get(ext.BODY) or {}
    decision, reason = body.get("decision"), body.get("reason", "")
    if decision not in ("approve", "deny") or not isinstance(reason, str):
        raise _bad('Send {"decision": "approve" or "deny", "reason": "shown to the member"}.')
    with ctx.services.transaction() as conn:
        org_id = _org(conn, ctx)
        decided = org_policies.decide(
            conn, org_id, ctx.extras[ext.PATH]["key_id"], decision == "approve", reason, ctx.actor()
        )
    return {"token_request": request_json(decided)}


HANDLERS = {
    ext.GET_ORG_POLICY.name: _answers(_get),
    ext.PUT_ORG_POLICY.name: _answers(_put),
    ext.LIST_TOKEN_REQUESTS.name: _answers(_list),
    ext.DECIDE_TOKEN_REQUEST.name: _answers(_decide),
}
