"""`scopegate orgs`: organizations, their members and teams, for the operator.

Every command calls the functions the organization methods call (`services.organizations`),
in one transaction, so a change is audited and reaches running servers through the change
log. The operator is nobody's user: audit events name the organization as the actor, with
credential kind `cli`, so `scopegate audit --user ORG` lists them. `--json` documents use
the shapes of the organization methods' answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import typer
from sqlalchemy import Connection

from scopegate.auth.roles import OrgRole, TeamRole
from scopegate.cli import output as out
from scopegate.cli.common import Database, names, option, require_user, usage, with_database
from scopegate.cli.option_groups import option_group
from scopegate.contract.status import does_not_exist
from scopegate.handlers.organizations import member_json, org_json, team_json
from scopegate.services import organizations
from scopegate.services.audit import cli_actor
from scopegate.store import apps, orgs
from scopegate.store.orgs import MemberRecord, TeamRecord

orgs_app = typer.Typer(
    help="Manage organizations: id namespaces that own apps, with members and teams.",
    no_args_is_help=True,
)
members_app = typer.Typer(help="Manage an organization's members.", no_args_is_help=True)
orgs_app.add_typer(members_app, name="members")
teams_app = typer.Typer(help="Manage an organization's teams.", no_args_is_help=True)
orgs_app.add_typer(teams_app, name="teams")

OrgArgument = Annotated[str, typer.Argument(help="The organization's id.", show_default=False)]
MemberArgument = Annotated[str, typer.Argument(help="The member's user id.", show_default=False)]
TeamArgument = Annotated[str, typer.Argument(help="The team's id.", show_default=False)]
TeamNameOption = Annotated[str | None, option("--name", "Display name (default: the id).")]
TeamRoleOption = Annotated[
    TeamRole | None,
    option(
        "--role",
        "What the team may do on its apps: contributor (read and write) or user (read). New "
        "teams default to user.",
        case_sensitive=False,
    ),
]
TeamAppsOption = Annotated[
    list[str] | None,
    option("--app", "An app of the organization the team reaches; repeatable or comma-separated."),
]
TeamMembersOption = Annotated[
    list[str] | None,
    option("--member", "A member of the organization in the team; repeatable or comma-separated."),
]
TEAM_COLUMNS = ("team id", "name", "role", "apps", "members")


@contextmanager
def _changing(db: Database, org_id: str) -> Iterator[Connection]:
    """One transaction on an existing organization; a missing one is named (the service's
    answer is deliberately bare)."""
    with db.begin() as (_, conn):
        _require_org(conn, org_id)
        yield conn


def _run(
    db: Database,
    operation: Callable[..., object],
    org_id: str,
    *args: object,
    shown: dict[str, object],
    text: str,
) -> None:
    """`operation(conn, org_id, *args, actor)` as the operator, in one transaction on an
    existing organization; then `shown` (after the org id) for --json, else `text`."""
    with _changing(db, org_id) as conn:
        operation(conn, org_id, *args, cli_actor(org_id))
    db.show({"org_id": org_id, **shown}, text)


def _require_org(conn: Connection, org_id: str) -> None:
    if orgs.get(conn, org_id) is None:
        raise does_not_exist(f"No organization '{org_id}'.")


def _team_rows(teams: list[TeamRecord], title: str, empty: str = "Nothing to show.") -> out.Rows:
    rows = [
        [t.team_id, t.name, t.role, ", ".join(t.app_ids) or "-", ", ".join(t.user_ids) or "-"]
        for t in teams
    ]
    return out.Rows(title, TEAM_COLUMNS, rows, no_wrap=("team id",), empty=empty)


def _member_rows(members: list[MemberRecord]) -> out.Rows:
    rows = [[m.user_id, m.email, m.role, out.when(m.created_at)] for m in members]
    columns = ("user id", "email", "role", "since")
    return out.Rows("Members", columns, rows, no_wrap=("user id",), empty="No members.")


@orgs_app.command("create")
@with_database
def orgs_create(
    org_id: OrgArgument,
    admin: Annotated[str, option("--admin", "The user who becomes its first admin.")],
    name: Annotated[str, typer.Option("--name", help="Display name (default: the id).")] = "",
    *,
    db: Database,
) -> None:
    """Create an organization with a first admin."""
    with db.begin() as (_, conn):
        org = organizations.create(conn, org_id, name, admin, cli_actor(org_id))
    db.show(
        {"organization": org_json(org), "admin": admin},
        f"Created organization {org.org_id} ({org.name}); admin: {admin}.",
    )


@orgs_app.command("list")
@with_database
def orgs_list(
    user: Annotated[
        str | None, option("--user", "Only this user's organizations, with their role.")
    ] = None,
    *,
    db: Database,
) -> None:
    """List every organization, or those a user belongs to."""
    with db.connect() as (_, conn):
        if user is not None:
            require_user(conn, user)
            found = orgs.organizations_of(conn, user)
        else:
            found = [(org, None) for org in orgs.list_all(conn)]
            sizes = {org.org_id: len(orgs.members(conn, org.org_id)) for org, _ in found}
    listed = [org_json(org, role) for org, role in found]
    if user is not None:
        table = out.Rows(
            f"Organizations of {user}",
            ("org id", "name", "role", "created"),
            [[o.org_id, o.name, role, out.when(o.created_at)] for o, role in found],
            no_wrap=("org id",),
            empty=f"User {user} belongs to no organization.",
        )
    else:
        table = out.Rows(
            "Organizations",
            ("org id", "name", "members", "created"),
            [[o.org_id, o.name, str(sizes[o.org_id]), out.when(o.created_at)] for o, _ in found],
            no_wrap=("org id",),
            empty="No organizations.",
        )
    db.show(
        {"user_id": user, "organizations": listed} if user else {"organizations": listed}, table
    )


@orgs_app.command("show")
@with_database
def orgs_show(org_id: OrgArgument, *, db: Database) -> None:
    """Show an organization: its members with their roles, and its teams."""
    with db.connect() as (_, conn):
        _require_org(conn, org_id)
        found = organizations.view(conn, org_id)
    db.show(
        {
            "organization": org_json(found.org),
            "members": [member_json(m) for m in found.members],
            "teams": [team_json(t) for t in found.teams],
        },
        f"Organization {found.org.org_id} ({found.org.name}), "
        f"created {out.when(found.org.created_at)}.",
        _member_rows(found.members),
        _team_rows(found.teams, "Teams", "No teams."),
    )


@orgs_app.command("delete")
@with_database
def orgs_delete(
    org_id: OrgArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    *,
    db: Database,
) -> None:
    """Delete an organization with its apps, their keys, its members and teams."""
    with db.services() as services:
        with services.engine.connect() as conn:
            _require_org(conn, org_id)
            count = len(apps.list_for_user(conn, org_id, offset=0, limit=10**9))
        if not yes:
            # On stderr: stdout stays one JSON document with --json.
            typer.confirm(
                f"Delete organization '{org_id}' with its {count} app(s) and their keys?",
                abort=True,
                err=True,
            )
        with services.engine.begin() as conn:
            app_ids = [a.app_id for a in apps.list_for_user(conn, org_id, offset=0, limit=10**9)]
            removed = organizations.delete(conn, org_id, cli_actor(org_id))
    db.show(
        {"id": org_id, "deleted": True, "apps_deleted": app_ids, "keys_deleted": removed},
        f"Deleted organization {org_id}, its {len(app_ids)} app(s) and {len(removed)} key(s).",
    )


# --- members -------------------------------------------------------------------------------


@members_app.command("add")
@with_database
def members_add(
    org_id: OrgArgument,
    role: Annotated[OrgRole, option("--role", "The member's role.", case_sensitive=False)],
    user: Annotated[str | None, option("--user", "The user's id.")] = None,
    email: Annotated[str | None, option("--email", "The email of an existing user.")] = None,
    *,
    db: Database,
) -> None:
    """Add an existing user to an organization, by id or email, with a role."""
    if bool(user) == bool(email):
        usage("Name the user with --user or --email (one of them).")
    with _changing(db, org_id) as conn:
        member = organizations.add_member(
            conn,
            org_id,
            user_id=user or "",
            email=email or "",
            role=role.value,
            actor=cli_actor(org_id),
        )
    db.show(
        {"org_id": org_id, "member": member_json(member)},
        f"Added {member.user_id} to {org_id} as {member.role}.",
    )


@members_app.command("set-role")
@with_database
def members_set_role(
    org_id: OrgArgument,
    user_id: MemberArgument,
    role: Annotated[
        OrgRole, typer.Argument(case_sensitive=False, help="The new role.", show_default=False)
    ],
    *,
    db: Database,
) -> None:
    """Change a member's role; the last admin keeps theirs."""
    _run(
        db,
        organizations.set_role,
        org_id,
        user_id,
        role.value,
        shown={"user_id": user_id, "role": role.value},
        text=f"{user_id} is now {role.value} in {org_id}.",
    )


@members_app.command("remove")
@with_database
def members_remove(org_id: OrgArgument, user_id: MemberArgument, *, db: Database) -> None:
    """Remove a member from the organization and its teams; the last admin stays."""
    _run(
        db,
        organizations.remove_member,
        org_id,
        user_id,
        shown={"user_id": user_id, "removed": True},
        text=f"Removed {user_id} from {org_id}.",
    )


# --- teams ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamOptions:
    """A team's --name, --role, --app and --member, as `teams create` and `teams patch`
    take them (`@option_group("team", TeamOptions)`)."""

    name: TeamNameOption = None
    role: TeamRoleOption = None
    app: TeamAppsOption = None
    member: TeamMembersOption = None


NO_TEAM_OPTIONS = TeamOptions()  # a placeholder: @option_group puts the options there


def _save_team(
    db: Database,
    org_id: str,
    team_id: str,
    team: TeamOptions,
    *,
    create: bool,
    app_ids: list[str] | None,
    user_ids: list[str] | None,
) -> None:
    """Create or change a team, then show it."""
    with _changing(db, org_id) as conn:
        saved = organizations.save_team(
            conn,
            org_id,
            team_id,
            name=team.name,
            role=team.role.value if team.role else None,
            app_ids=app_ids,
            user_ids=user_ids,
            create=create,
            actor=cli_actor(org_id),
        )
    db.show(
        {"org_id": saved.org_id, "team": team_json(saved)},
        f"{'Created' if create else 'Updated'} team {saved.team_id} in {org_id}.",
        _team_rows([saved], ""),
    )


@teams_app.command("create")
@with_database
@option_group("team", TeamOptions)
def teams_create(
    org_id: OrgArgument,
    team_id: TeamArgument,
    team: TeamOptions = NO_TEAM_OPTIONS,
    *,
    db: Database,
) -> None:
    """Create a team: its members reach its apps with the team's role."""
    _save_team(
        db, org_id, team_id, team, create=True, app_ids=names(team.app), user_ids=names(team.member)
    )


@teams_app.command("patch")
@with_database
@option_group("team", TeamOptions)
def teams_patch(
    org_id: OrgArgument,
    team_id: TeamArgument,
    team: TeamOptions = NO_TEAM_OPTIONS,
    no_apps: Annotated[bool, typer.Option("--no-apps", help="Take every app away.")] = False,
    no_members: Annotated[
        bool, typer.Option("--no-members", help="Take every member away.")
    ] = False,
    *,
    db: Database,
) -> None:
    """Change a team: the fields given are overwritten (--app and --member replace the
    whole list), the others kept."""
    app, member = team.app, team.member
    if (app and no_apps) or (member and no_members):
        usage("Give --app or --no-apps, --member or --no-members, not both.")
    if team.name is None and team.role is None and not (app or member or no_apps or no_members):
        usage("Nothing to change: give --name, --role, --app, --member, --no-apps or --no-members.")
    _save_team(
        db,
        org_id,
        team_id,
        team,
        create=False,
        app_ids=[] if no_apps else (names(app) if app else None),
        user_ids=[] if no_members else (names(member) if member else None),
    )


@teams_app.command("delete")
@with_database
def teams_delete(org_id: OrgArgument, team_id: TeamArgument, *, db: Database) -> None:
    """Delete a team: its members keep what their organization role gives them."""
    _run(
        db,
        organizations.delete_team,
        org_id,
        team_id,
        shown={"id": team_id, "deleted": True},
        text=f"Deleted team {team_id} of {org_id}.",
    )
