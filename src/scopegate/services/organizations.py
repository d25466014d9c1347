"""Organization operations shared by the extension routes and the CLI.

Each runs in the caller's transaction, records an audit event, and logs an `org` change
(`change_log`) so every process drops its cached relations to the organization: a
member who leaves, or loses a role or a team, loses access within the revocation bound.
Callers decide who may do what (see `require_admin`); the CLI is the operator.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from scopegate.auth.roles import OrgRole, TeamRole, parse_org_role, parse_team_role
from scopegate.contract.status import ApiError, C, does_not_exist, invalid_argument
from scopegate.services import change_log
from scopegate.services.account_ids import check_new_account_id
from scopegate.services.apps import remove_app
from scopegate.services.audit import Actor
from scopegate.services.checks import validate_id
from scopegate.services.users import find_person
from scopegate.store import apps, orgs, users
from scopegate.store.orgs import MemberRecord, OrgRecord, TeamRecord

ROLE_NAMES = ", ".join(r.value for r in OrgRole)
TEAM_ROLE_NAMES = ", ".join(r.value for r in TeamRole)


@dataclass(frozen=True, slots=True)
class OrgView:
    org: OrgRecord
    members: list[MemberRecord]
    teams: list[TeamRecord]


def org_role(value: str) -> OrgRole:
    role = parse_org_role(value or "")
    if role is None:
        raise invalid_argument(f"Unknown role '{value}'. Roles: {ROLE_NAMES}.")
    return role


def team_role(value: str) -> TeamRole:
    role = parse_team_role(value or "")
    if role is None:
        raise invalid_argument(f"Unknown team role '{value}'. Team roles: {TEAM_ROLE_NAMES}.")
    return role


def get_org(conn: Connection, org_id: str) -> OrgRecord:
    org = orgs.get(conn, org_id)
    if org is None:
        raise does_not_exist()
    return org


def require_member(conn: Connection, org_id: str, user_id: str) -> OrgRole:
    """The caller's role; outsiders learn nothing, not even that the organization exists."""
    role = parse_org_role(orgs.role_of(conn, org_id, user_id) or "")
    if role is None or orgs.get(conn, org_id) is None:
        raise does_not_exist()
    return role


def require_admin(conn: Connection, org_id: str, user_id: str) -> None:
    if require_member(conn, org_id, user_id) is not OrgRole.ADMIN:
        raise ApiError(
            C.CONN_INSUFFICIENT_SCOPES,
            "Insufficient scopes",
            f"Only an admin of organization '{org_id}' may do this.",
        )


def view(conn: Connection, org_id: str) -> OrgView:
    return OrgView(get_org(conn, org_id), orgs.members(conn, org_id), orgs.list_teams(conn, org_id))


def _changed(conn: Connection, org_id: str) -> None:
    change_log.record(conn, "org", org_id)


def create(conn: Connection, org_id: str, name: str, admin_user_id: str, actor: Actor) -> OrgRecord:
    """A new organization with `admin_user_id` as its first admin."""
    validate_id("organization id", org_id)
    admin = find_person(conn, admin_user_id)
    if users.get(conn, org_id) is not None:
        raise invalid_argument(f"The id '{org_id}' is taken; choose another.")
    check_new_account_id(conn, "organization id", org_id)
    org = orgs.create(conn, org_id, name or org_id)
    orgs.add_member(conn, org_id, admin.user_id, OrgRole.ADMIN.value)
    _changed(conn, org_id)  # what a process cached while the id was nobody's ends
    actor.record(conn, "org.create", f"org:{org_id}", f"admin={admin.user_id}")
    return org


def delete(conn: Connection, org_id: str, actor: Actor) -> list[str]:
    """Delete an organization with its apps and their keys; returns the keys' public ids."""
    get_org(conn, org_id)
    removed: list[str] = []
    for app in apps.list_for_user(conn, org_id, offset=0, limit=10**9):
        removed += remove_app(conn, app)
    orgs.delete_org(conn, org_id)
    _changed(conn, org_id)
    actor.record(conn, "org.delete", f"org:{org_id}", f"keys deleted: {len(removed)}")
    return removed


def add_member(
    conn: Connection, org_id: str, *, user_id: str = "", email: str = "", role: str, actor: Actor
) -> MemberRecord:
    get_org(conn, org_id)
    parsed = org_role(role)
    person = find_person(conn, user_id, email)
    if orgs.role_of(conn, org_id, person.user_id) is not None:
        raise invalid_argument(f"{person.user_id} is already a member of '{org_id}'.")
    orgs.add_member(conn, org_id, person.user_id, parsed.value)
    _changed(conn, org_id)
    actor.record(conn, "org.member.add", f"org:{org_id}", f"user={person.user_id} role={parsed}")
    return next(m for m in orgs.members(conn, org_id) if m.user_id == person.user_id)


def _keep_an_admin(conn: Connection, org_id: str, user_id: str) -> None:
    if orgs.role_of(conn, org_id, user_id) == OrgRole.ADMIN and orgs.count_admins(conn, org_id) < 2:
        raise ApiError(
            C.CONN_INVALID_REQUEST,
            "Invalid request",
            f"{user_id} is the last admin of '{org_id}': make another member admin first.",
        )


def _member_of(conn: Connection, org_id: str, user_id: str) -> None:
    if orgs.role_of(conn, org_id, user_id) is None:
        raise does_not_exist(f"{user_id} is not a member of '{org_id}'.")


def set_role(conn: Connection, org_id: str, user_id: str, role: str, actor: Actor) -> None:
    parsed = org_role(role)
    _member_of(conn, org_id, user_id)
    if parsed is not OrgRole.ADMIN:
        _keep_an_admin(conn, org_id, user_id)
    orgs.set_role(conn, org_id, user_id, parsed.value)
    _changed(conn, org_id)
    actor.record(conn, "org.member.patch", f"org:{org_id}", f"user={user_id} role={parsed}")


def remove_member(conn: Connection, org_id: str, user_id: str, actor: Actor) -> None:
    _member_of(conn, org_id, user_id)
    _keep_an_admin(conn, org_id, user_id)
    orgs.remove_member(conn, org_id, user_id)
    _changed(conn, org_id)
    actor.record(conn, "org.member.remove", f"org:{org_id}", f"user={user_id}")


def _team_apps(conn: Connection, org_id: str, app_ids: list[str]) -> list[int]:
    pks = []
    for app_id in dict.fromkeys(app_ids):
        app = apps.get(conn, org_id, app_id)
        if app is None:
            raise does_not_exist(f"Organization '{org_id}' has no app '{app_id}'.")
        pks.append(app.pk)
    return pks


def _team_members(conn: Connection, org_id: str, user_ids: list[str]) -> list[str]:
    for user_id in dict.fromkeys(user_ids):
        if orgs.role_of(conn, org_id, user_id) is None:
            raise invalid_argument(f"{user_id} is not a member of '{org_id}'; add them first.")
    return list(dict.fromkeys(user_ids))


def save_team(
    conn: Connection,
    org_id: str,
    team_id: str,
    *,
    name: str | None = None,
    role: str | None = None,
    app_ids: list[str] | None = None,
    user_ids: list[str] | None = None,
    create: bool,
    actor: Actor,
) -> TeamRecord:
    """Create a team, or overwrite the fields given of an existing one."""
    get_org(conn, org_id)
    existing = orgs.get_team(conn, org_id, team_id)
    if create:
        validate_id("team id", team_id)
        if existing is not None:
            raise invalid_argument(f"Team '{team_id}' already exists in '{org_id}'.")
        pk = orgs.create_team(
            conn, org_id, team_id, name or team_id, team_role(role or TeamRole.USER).value
        )
    else:
        if existing is None:
            raise does_not_exist(f"No team '{team_id}' in '{org_id}'.")
        pk = existing.pk
        orgs.update_team(
            conn,
            pk,
            name=existing.name if name is None else name,
            role=existing.role if role is None else team_role(role).value,
        )
    if app_ids is not None:
        orgs.set_team_apps(conn, pk, _team_apps(conn, org_id, app_ids))
    if user_ids is not None:
        orgs.set_team_members(conn, pk, _team_members(conn, org_id, user_ids))
    _changed(conn, org_id)
    team = orgs.get_team(conn, org_id, team_id)
    assert team is not None  # written in this transaction, which holds its row
    actor.record(
        conn,
        "team.create" if create else "team.patch",
        f"org:{org_id}/team:{team_id}",
        f"role={team.role} apps={','.join(team.app_ids)} members={','.join(team.user_ids)}",
    )
    return team


def delete_team(conn: Connection, org_id: str, team_id: str, actor: Actor) -> None:
    team = orgs.get_team(conn, org_id, team_id)
    if team is None:
        raise does_not_exist(f"No team '{team_id}' in '{org_id}'.")
    orgs.delete_team(conn, team.pk)
    _changed(conn, org_id)
    actor.record(conn, "team.delete", f"org:{org_id}/team:{team_id}")
