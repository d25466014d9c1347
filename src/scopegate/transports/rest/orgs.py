"""Organizations over REST: the proto has no organization methods, so these are scopegate
extension routes (under `/scopegate/v1/organizations`), plus the one route the official
Python SDK calls, `GET /v2/users/{user_id}/organizations`.

Callers authenticate like any PAT method: a PAT or a session, never an app-specific key
(an API key stands for one app, not a person). Reading an organization takes membership,
changing it takes the admin role; outsiders get "Resource does not exist" whether the
organization exists or not. Every change goes through `scopegate.services.organizations`, which
audits it and tells every process to drop cached relations to the organization.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scopegate.auth.policy import ME
from scopegate.auth.principal import CredentialKind, Principal
from scopegate.contract.status import ApiError, C, does_not_exist, success
from scopegate.dispatch import Dispatcher
from scopegate.services import organizations
from scopegate.services.accounts import Actor
from scopegate.store import orgs
from scopegate.store.orgs import MemberRecord, OrgRecord, TeamRecord
from scopegate.transports.rest.endpoint import (
    BadRequestError,
    json_response,
    read_json_body,
    status_only,
    to_json_dict,
    with_retry_after,
)

PREFIX = "/scopegate/v1/organizations"


def org_json(org: OrgRecord, role: str | None = None) -> dict:
    body = {"id": org.org_id, "name": org.name, "created_at": org.created_at.isoformat()}
    if role is not None:
        body["role"] = {"id": role}
    return body


def member_json(member: MemberRecord) -> dict:
    return {
        "user_id": member.user_id,
        "email": member.email,
        "role": member.role,
        "created_at": member.created_at.isoformat(),
    }


def team_json(team: TeamRecord) -> dict:
    return {
        "id": team.team_id,
        "name": team.name,
        "role": team.role,
        "app_ids": list(team.app_ids),
        "user_ids": list(team.user_ids),
    }


def _strings(body: dict, name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"'{name}' must be a list of strings.")
    return value


def _string(body: dict, name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise BadRequestError(f"'{name}' must be a non-empty string.")
    return value


Operation = Callable[[Connection, Principal, Actor, dict, dict], dict]


class OrganizationRoutes:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._services = dispatcher.services

    def routes(self) -> list[Route]:
        def route(path: str, operation: Operation, verb: str) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._run(request, operation)

            return Route(path, endpoint, methods=[verb], name=f"{verb} {path}")

        return [
            route("/v2/users/{user_id}/organizations", list_mine, "GET"),
            route(PREFIX, _create, "POST"),
            route(PREFIX + "/{org_id}", _show, "GET"),
            route(PREFIX + "/{org_id}", _delete, "DELETE"),
            route(PREFIX + "/{org_id}/members", _add_member, "POST"),
            route(PREFIX + "/{org_id}/members/{user_id}", _patch_member, "PATCH"),
            route(PREFIX + "/{org_id}/members/{user_id}", _remove_member, "DELETE"),
            route(PREFIX + "/{org_id}/teams", _create_team, "POST"),
            route(PREFIX + "/{org_id}/teams/{team_id}", _patch_team, "PATCH"),
            route(PREFIX + "/{org_id}/teams/{team_id}", _delete_team, "DELETE"),
        ]

    async def _run(self, request: Request, operation: Operation) -> Response:
        request_id = self._dispatcher.new_request_id()
        try:
            # Through the dispatcher: a failure counts against the caller's address, as on
            # every other route.
            principal = await self._dispatcher.authenticate(
                request.headers.get("authorization"),
                request.headers.get("x-clarifai-session-token"),
                request.client.host if request.client else "",
            )
            _refuse_app_keys(principal)
            body = await read_json_body(request) if request.method in ("POST", "PATCH") else {}
            result = await self.run_as(
                principal,
                operation,
                dict(request.path_params),
                body,
                client_address=request.client.host if request.client else "",
                request_id=request_id,
            )
        except BadRequestError as exc:
            error = ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", str(exc))
            return status_only(error, request_id)
        except ApiError as error:
            return with_retry_after(status_only(error, request_id), error)
        return json_response({"status": to_json_dict(success(request_id)), **result})

    async def run_as(
        self,
        principal: Principal,
        operation: Operation,
        path: dict,
        body: dict,
        *,
        client_address: str,
        request_id: str,
    ) -> dict:
        """Run an operation for an authenticated caller: what every route above does once
        it has the caller, and what the portal calls for its signed-in user, so the two
        share the credential check, the transaction, the audit and the cache eviction."""
        _refuse_app_keys(principal)
        actor = Actor(
            user_id=principal.user_id,
            credential_kind=principal.kind.value,
            credential_id=principal.credential_id,
            client_address=client_address,
            request_id=request_id,
        )
        return await asyncio.to_thread(self._transact, operation, principal, actor, path, body)

    def _transact(
        self, operation: Operation, principal: Principal, actor: Actor, path: dict, body: dict
    ) -> dict:
        with self._services.engine.begin() as conn:
            result = operation(conn, principal, actor, path, body)
        if "org_id" in path:
            self._services.evict_owner(path["org_id"])
        for public_id in result.pop("_evict_keys", []):
            self._services.evict(public_id)
        return result


def _refuse_app_keys(principal: Principal) -> None:
    if principal.kind is CredentialKind.APP_KEY:
        raise ApiError(
            C.CONN_INSUFFICIENT_SCOPES,
            "Personal Access Token required",
            "Organizations are managed with a Personal Access Token or a session, "
            "not an app-specific API key.",
        )


def list_mine(conn: Connection, principal: Principal, _actor: Actor, path: dict, _b: dict):
    """The caller's organizations with their role; the portal lists them through this too."""
    user_id = path["user_id"]
    if user_id not in (ME, principal.user_id):
        raise does_not_exist()  # whose organizations a user belongs to is theirs to know
    found = orgs.organizations_of(conn, principal.user_id)
    return {"organizations": [org_json(org, role) for org, role in found]}


def _create(conn: Connection, principal: Principal, actor: Actor, path: dict, body: dict):
    org_id = _string(body, "id", required=True)
    org = organizations.create(conn, org_id, _string(body, "name") or "", principal.user_id, actor)
    path["org_id"] = org_id  # evicted here at once, like the routes that name it
    return {"organization": org_json(org, "admin")}


def _show(conn: Connection, principal: Principal, _actor: Actor, path: dict, _body: dict):
    role = organizations.require_member(conn, path["org_id"], principal.user_id)
    found = organizations.view(conn, path["org_id"])
    return {
        "organization": org_json(found.org, role.value),
        "members": [member_json(m) for m in found.members],
        "teams": [team_json(t) for t in found.teams],
    }


def _delete(conn: Connection, principal: Principal, actor: Actor, path: dict, _body: dict):
    organizations.require_admin(conn, path["org_id"], principal.user_id)
    return {"_evict_keys": organizations.delete(conn, path["org_id"], actor)}


def _add_member(conn: Connection, principal: Principal, actor: Actor, path: dict, body: dict):
    organizations.require_admin(conn, path["org_id"], principal.user_id)
    member = organizations.add_member(
        conn,
        path["org_id"],
        user_id=_string(body, "user_id") or "",
        email=_string(body, "email") or "",
        role=_string(body, "role", required=True),
        actor=actor,
    )
    return {"member": member_json(member)}


def _patch_member(conn: Connection, principal: Principal, actor: Actor, path: dict, body: dict):
    organizations.require_admin(conn, path["org_id"], principal.user_id)
    role = _string(body, "role", required=True)
    organizations.set_role(conn, path["org_id"], path["user_id"], role, actor)
    return {}


def _remove_member(conn: Connection, principal: Principal, actor: Actor, path: dict, _b: dict):
    # Anyone may leave; removing someone else takes an admin.
    if path["user_id"] in (ME, principal.user_id):
        organizations.require_member(conn, path["org_id"], principal.user_id)
        path["user_id"] = principal.user_id
    else:
        organizations.require_admin(conn, path["org_id"], principal.user_id)
    organizations.remove_member(conn, path["org_id"], path["user_id"], actor)
    return {}


def _save_team(conn, principal, actor, path: dict, body: dict, *, team_id: str, create: bool):
    organizations.require_admin(conn, path["org_id"], principal.user_id)
    team = organizations.save_team(
        conn,
        path["org_id"],
        team_id,
        name=_string(body, "name"),
        role=_string(body, "role"),
        app_ids=_strings(body, "app_ids"),
        user_ids=_strings(body, "user_ids"),
        create=create,
        actor=actor,
    )
    return {"team": team_json(team)}


def _create_team(conn: Connection, principal: Principal, actor: Actor, path: dict, body: dict):
    team_id = _string(body, "id", required=True)
    return _save_team(conn, principal, actor, path, body, team_id=team_id, create=True)


def _patch_team(conn: Connection, principal: Principal, actor: Actor, path: dict, body: dict):
    return _save_team(conn, principal, actor, path, body, team_id=path["team_id"], create=False)


def _delete_team(conn: Connection, principal: Principal, actor: Actor, path: dict, _b: dict):
    organizations.require_admin(conn, path["org_id"], principal.user_id)
    organizations.delete_team(conn, path["org_id"], path["team_id"], actor)
    return {}
