"""Organizations, their members and teams: the extension methods of contract/extensions.py.

Authorized before they run like every method (a PAT or a session; membership to read,
`admin` to change). Each change runs in `services.transaction()` and calls
`services.organizations`, which audits it and records what it evicts (the organization's
relations, a deleted app's keys): every process drops them, this one at commit. The JSON
documents built here are the routes' answers, and what `scopegate orgs --json` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Connection

from scopegate.auth.policy import ME
from scopegate.context import RequestContext
from scopegate.contract import extensions as ext
from scopegate.contract.status import ApiError, C, does_not_exist
from scopegate.handlers import Handler
from scopegate.services import organizations
from scopegate.store import orgs
from scopegate.store.orgs import MemberRecord, OrgRecord, TeamRecord

Document = dict[str, Any]


def org_json(org: OrgRecord, role: str | None = None) -> Document:
    body: Document = {"id": org.org_id, "name": org.name, "created_at": org.created_at.isoformat()}
    if role is not None:
        body["role"] = {"id": role}
    return body


def listed_org_json(org: OrgRecord, role: str) -> Document:
    """An entry of ListOrganizations: nested under `organization`, where the clarifai SDK
    reads `organizations[i].organization.{id,name}`, and flat beside it, as the portal, the
    CLI and `/scopegate/v1` clients read it."""
    flat = org_json(org, role)
    return {"organization": org_json(org)} | flat


def member_json(member: MemberRecord) -> Document:
    return {
        "user_id": member.user_id,
        "email": member.email,
        "role": member.role,
        "created_at": member.created_at.isoformat(),
    }


def team_json(team: TeamRecord) -> Document:
    return {
        "id": team.team_id,
        "name": team.name,
        "role": team.role,
        "app_ids": list(team.app_ids),
        "user_ids": list(team.user_ids),
    }


def _bad_format(details: str) -> ApiError:
    return ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", details)


def _string(body: Document, name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise _bad_format(f"'{name}' must be a non-empty string.")
    return value


def _strings(body: Document, name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad_format(f"'{name}' must be a list of strings.")
    return value


Operation = Callable[[RequestContext], Document]


def _answers(operation: Operation) -> Handler:
    """The operation's document is the answer beside `status` (see contract/extensions)."""

    def handle(ctx: RequestContext, _request: Message) -> Message:
        ctx.extras[ext.ANSWER] = operation(ctx)
        return ctx.spec.output_type()

    return Handler(handle)


def _org_id(conn: Connection, ctx: RequestContext) -> str:
    """The organization the call was authorized on. A caller naming its own account (`me`)
    is its owner, and a person is no organization: as if it did not exist."""
    organizations.get_org(conn, ctx.target.user_id)
    return ctx.target.user_id


def _body(ctx: RequestContext) -> Document:
    return ctx.extras.get(ext.BODY) or {}


def _path(ctx: RequestContext, name: str) -> str:
    return ctx.extras[ext.PATH][name]


def _list_mine(ctx: RequestContext) -> Document:
    """The caller's organizations with their role. Only one's own list exists: a member
    naming its organization's account is allowed on it, but an organization belongs to no
    organization, and whose organizations a user belongs to is theirs to know."""
    user_id = ctx.actor().user_id
    if ctx.target.user_id != user_id:
        raise does_not_exist()
    with ctx.services.engine.connect() as conn:
        found = orgs.organizations_of(conn, user_id)
    return {"organizations": [listed_org_json(org, role) for org, role in found]}


def _create(ctx: RequestContext) -> Document:
    body, actor = _body(ctx), ctx.actor()
    org_id = _string(body, "id", required=True) or ""
    with ctx.services.transaction() as conn:
        org = organizations.create(conn, org_id, _string(body, "name") or "", actor.user_id, actor)
    return {"organization": org_json(org, "admin")}


def _show(ctx: RequestContext) -> Document:
    with ctx.services.engine.connect() as conn:
        org_id = _org_id(conn, ctx)
        role = orgs.role_of(conn, org_id, ctx.actor().user_id)
        found = organizations.view(conn, org_id)
    return {
        "organization": org_json(found.org, role),
        "members": [member_json(m) for m in found.members],
        "teams": [team_json(t) for t in found.teams],
    }


def _change(change: Callable[[Connection, RequestContext, str], Document]) -> Operation:
    """A change to an existing organization, in one transaction."""

    def operation(ctx: RequestContext) -> Document:
        with ctx.services.transaction() as conn:
            return change(conn, ctx, _org_id(conn, ctx))

    return operation


@_change
def _delete(conn: Connection, ctx: RequestContext, org_id: str) -> Document:
    organizations.delete(conn, org_id, ctx.actor())  # with its apps and their keys
    return {}


@_change
def _add_member(conn: Connection, ctx: RequestContext, org_id: str) -> Document:
    body = _body(ctx)
    member = organizations.add_member(
        conn,
        org_id,
        user_id=_string(body, "user_id") or "",
        email=_string(body, "email") or "",
        role=_string(body, "role", required=True) or "",
        actor=ctx.actor(),
    )
    return {"member": member_json(member)}


@_change
def _patch_member(conn: Connection, ctx: RequestContext, org_id: str) -> Document:
    role = _string(_body(ctx), "role", required=True) or ""
    organizations.set_role(conn, org_id, _path(ctx, "user_id"), role, ctx.actor())
    return {}


@_change
def _remove_member(conn: Connection, ctx: RequestContext, org_id: str) -> Document:
    actor = ctx.actor()
    user_id = _path(ctx, "user_id")
    if user_id in (ME, actor.user_id):
        user_id = actor.user_id  # leaving: membership, authorized already, is enough
    elif ctx.principal is not None:
        # Removing someone else is the admin's: authorized as a method of its own.
        ctx.authorize(ctx.principal, ext.REMOVE_MEMBER, ctx.target)
    organizations.remove_member(conn, org_id, user_id, actor)
    return {}


def _save_team(conn: Connection, ctx: RequestContext, org_id: str, team_id: str, *, create: bool):
    body = _body(ctx)
    team = organizations.save_team(
        conn,
        org_id,
        team_id,
        name=_string(body, "name"),
        role=_string(body, "role"),
        app_ids=_strings(body, "app_ids"),
        user_ids=_strings(body, "user_ids"),
        create=create,
        actor=ctx.actor(),
    )
    return {"team": team_json(team)}


@_change
def _create_team(conn: Connection, ctx: RequestContext, org_id: str) -> Document:
    team_id = _string(_body(ctx), "id", required=True) or ""
    return _save_team(conn, ctx, org_id, team_id, create=True)


@_change
def _patch_team(conn: Connection, ctx: RequestContext, org_id: str) -> Document:
    return _save_team(conn, ctx, org_id, _path(ctx, "team_id"), create=False)


@_change
def _delete_team(conn: Connection, ctx: RequestContext, org_id: str) -> Document:
    organizations.delete_team(conn, org_id, _path(ctx, "team_id"), ctx.actor())
    return {}


HANDLERS = {
    ext.LIST_ORGANIZATIONS.name: _answers(_list_mine),
    ext.POST_ORGANIZATION.name: _answers(_create),
    ext.GET_ORGANIZATION.name: _answers(_show),
    ext.DELETE_ORGANIZATION.name: _answers(_delete),
    ext.POST_MEMBER.name: _answers(_add_member),
    ext.PATCH_MEMBER.name: _answers(_patch_member),
    ext.DELETE_MEMBER.name: _answers(_remove_member),
    ext.POST_TEAM.name: _answers(_create_team),
    ext.PATCH_TEAM.name: _answers(_patch_team),
    ext.DELETE_TEAM.name: _answers(_delete_team),
}
