"""Organizations, their members and teams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from scopegate.store.records import now, row_reader
from scopegate.store.rows import every, one
from scopegate.store.schema import apps, org_members, team_apps, team_members, teams, users

ORGANIZATION = "organization"
# An organization is a row of `users` (it owns apps under its id) that nobody logs in as;
# `email` is unique and required there, so it gets an address in the reserved `.invalid`
# top-level domain, which can never be a real mailbox.
_EMAIL_DOMAIN = "organizations.invalid"


@dataclass(frozen=True, slots=True)
class OrgRecord:
    org_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemberRecord:
    org_id: str
    user_id: str
    email: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TeamRecord:
    pk: int
    org_id: str
    team_id: str
    name: str
    role: str
    app_ids: tuple[str, ...]
    user_ids: tuple[str, ...]


_org = row_reader(OrgRecord)
_member = row_reader(MemberRecord)
# An organization's row of `users`, under its OrgRecord names.
_ORG_COLUMNS = (
    users.c.user_id.label("org_id"),
    users.c.first_name.label("name"),
    users.c.created_at,
)


def create(conn: Connection, org_id: str, name: str) -> OrgRecord:
    at = now()
    conn.execute(
        insert(users).values(
            user_id=org_id,
            email=f"{org_id}@{_EMAIL_DOMAIN}",
            password_hash=None,
            first_name=name,
            last_name="",
            created_at=at,
            kind=ORGANIZATION,
        )
    )
    return OrgRecord(org_id, name, at)


def get(conn: Connection, org_id: str) -> OrgRecord | None:
    query = select(*_ORG_COLUMNS).where(users.c.user_id == org_id, users.c.kind == ORGANIZATION)
    return one(conn, query, _org)


def list_all(conn: Connection) -> list[OrgRecord]:
    query = select(*_ORG_COLUMNS).where(users.c.kind == ORGANIZATION).order_by(users.c.user_id)
    return every(conn, query, _org)


def is_organization(conn: Connection, user_id: str) -> bool:
    return get(conn, user_id) is not None


def delete_org(conn: Connection, org_id: str) -> None:
    conn.execute(delete(users).where(users.c.user_id == org_id, users.c.kind == ORGANIZATION))


def _member_select():
    return select(
        org_members.c.org_id,
        org_members.c.user_id,
        users.c.email,
        org_members.c.role,
        org_members.c.created_at,
    ).select_from(org_members.join(users, org_members.c.user_id == users.c.user_id))


def members(conn: Connection, org_id: str) -> list[MemberRecord]:
    query = _member_select().where(org_members.c.org_id == org_id)
    return every(conn, query.order_by(org_members.c.user_id), _member)


# A team with each of its members and each of its apps: who reaches which app through it.
_TEAM_ACCESS = teams.join(team_members, team_members.c.team_pk == teams.c.id).join(
    team_apps, team_apps.c.team_pk == teams.c.id
)
# Built once: both run on every relation lookup (see relations.py).
_ROLE_OF = select(org_members.c.role).where(
    org_members.c.org_id == bindparam("org_id"), org_members.c.user_id == bindparam("user_id")
)
_TEAM_ROLES_ON_APP = (
    select(teams.c.role)
    .select_from(_TEAM_ACCESS)
    .where(
        team_members.c.user_id == bindparam("user_id"),
        team_apps.c.app_pk == bindparam("app_pk"),
    )
)


def role_of(conn: Connection, org_id: str, user_id: str) -> str | None:
    return conn.execute(_ROLE_OF, {"org_id": org_id, "user_id": user_id}).scalar()


def add_member(conn: Connection, org_id: str, user_id: str, role: str) -> None:
    conn.execute(
        insert(org_members).values(org_id=org_id, user_id=user_id, role=role, created_at=now())
    )


def set_role(conn: Connection, org_id: str, user_id: str, role: str) -> None:
    conn.execute(
        update(org_members)
        .where(org_members.c.org_id == org_id, org_members.c.user_id == user_id)
        .values(role=role)
    )


def remove_member(conn: Connection, org_id: str, user_id: str) -> None:
    """Leaving an organization leaves its teams too."""
    conn.execute(
        delete(org_members).where(org_members.c.org_id == org_id, org_members.c.user_id == user_id)
    )
    team_pks = select(teams.c.id).where(teams.c.org_id == org_id).scalar_subquery()
    conn.execute(
        delete(team_members).where(
            team_members.c.user_id == user_id, team_members.c.team_pk.in_(team_pks)
        )
    )


def count_admins(conn: Connection, org_id: str) -> int:
    return len(
        conn.execute(
            select(org_members.c.user_id).where(
                org_members.c.org_id == org_id, org_members.c.role == "admin"
            )
        ).all()
    )


def organizations_of(conn: Connection, user_id: str) -> list[tuple[OrgRecord, str]]:
    """The organizations a user belongs to, with the user's role in each."""
    query = (
        select(*_ORG_COLUMNS, org_members.c.role)
        .select_from(org_members.join(users, org_members.c.org_id == users.c.user_id))
        .where(org_members.c.user_id == user_id)
        .order_by(users.c.user_id)
    )
    return every(conn, query, lambda row: (_org(row), row.role))


# --- teams ---------------------------------------------------------------------------------


def _team(conn: Connection, row) -> TeamRecord:
    app_ids = conn.execute(
        select(apps.c.app_id)
        .select_from(team_apps.join(apps, team_apps.c.app_pk == apps.c.id))
        .where(team_apps.c.team_pk == row.id)
        .order_by(apps.c.app_id)
    ).scalars()
    user_ids = conn.execute(
        select(team_members.c.user_id)
        .where(team_members.c.team_pk == row.id)
        .order_by(team_members.c.user_id)
    ).scalars()
    return TeamRecord(
        row.id, row.org_id, row.team_id, row.name, row.role, tuple(app_ids), tuple(user_ids)
    )


def get_team(conn: Connection, org_id: str, team_id: str) -> TeamRecord | None:
    query = select(teams).where(teams.c.org_id == org_id, teams.c.team_id == team_id)
    return one(conn, query, partial(_team, conn))


def list_teams(conn: Connection, org_id: str) -> list[TeamRecord]:
    query = select(teams).where(teams.c.org_id == org_id).order_by(teams.c.team_id)
    return every(conn, query, partial(_team, conn))


def create_team(conn: Connection, org_id: str, team_id: str, name: str, role: str) -> int:
    result = conn.execute(
        insert(teams).values(org_id=org_id, team_id=team_id, name=name, role=role, created_at=now())
    )
    return result.inserted_primary_key[0]


def update_team(conn: Connection, team_pk: int, *, name: str, role: str) -> None:
    conn.execute(update(teams).where(teams.c.id == team_pk).values(name=name, role=role))


def set_team_apps(conn: Connection, team_pk: int, app_pks: list[int]) -> None:
    conn.execute(delete(team_apps).where(team_apps.c.team_pk == team_pk))
    if app_pks:
        conn.execute(insert(team_apps), [{"team_pk": team_pk, "app_pk": pk} for pk in app_pks])


def set_team_members(conn: Connection, team_pk: int, user_ids: list[str]) -> None:
    conn.execute(delete(team_members).where(team_members.c.team_pk == team_pk))
    if user_ids:
        conn.execute(insert(team_members), [{"team_pk": team_pk, "user_id": u} for u in user_ids])


def delete_team(conn: Connection, team_pk: int) -> None:
    conn.execute(delete(teams).where(teams.c.id == team_pk))


def team_roles_on_app(conn: Connection, user_id: str, app_pk: int) -> list[str]:
    """The roles of the teams that give `user_id` access to one app."""
    rows = conn.execute(_TEAM_ROLES_ON_APP, {"user_id": user_id, "app_pk": app_pk})
    return [r.role for r in rows]


def team_app_pks(conn: Connection, org_id: str, user_id: str) -> set[int]:
    """The apps of `org_id` that `user_id` reaches through teams."""
    rows = conn.execute(
        select(team_apps.c.app_pk)
        .select_from(_TEAM_ACCESS)
        .where(teams.c.org_id == org_id, team_members.c.user_id == user_id)
    )
    return {r.app_pk for r in rows}
