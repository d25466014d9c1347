"""`scopegate orgs`: organizations, their members and teams, for the operator.

Every command calls the functions the extension routes call (`scopegate.services.organizations`),
in one transaction, so a change is audited and reaches running servers through the change
log. The operator is nobody's user: audit events name the organization as the actor, with
credential kind `cli`, so `scopegate audit --user ORG` lists them. `--json` documents use
the shapes of the extension routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from scopegate.auth.roles import OrgRole, TeamRole
from scopegate.cli import output as out
from scopegate.cli.main import DatabaseUrl, DataDir, JsonOutput, _names, _open, _usage, _user

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from scopegate.store.orgs import MemberRecord, OrgRecord, TeamRecord

orgs_app = typer.Typer(
    help="Manage organizations: id namespaces that own apps, with members and teams.",
    no_args_is_help=True,
)
members_app = typer.Typer(help="Manage an organization's members.", no_args_is_help=True)
orgs_app.add_typer(members_app, name="members")
teams_app = typer.Typer(help="Manage an organization's teams.", no_args_is_help=True)
orgs_app.add_typer(teams_app, name="teams")

OrgArgument = Annotated[str, typer.Argument(help="The organization's id.", show_default=False)]
TeamArgument = Annotated[str, typer.Argument(help="The team's id.", show_default=False)]
TeamNameOption = Annotated[
    str | None, typer.Option("--name", help="Display name (default: the id).", show_default=False)
]
TeamRoleOption = Annotated[
    TeamRole | None,
    typer.Option(
        "--role",
        case_sensitive=False,
        help="What the team may do on its apps: contributor (read and write) or user (read). "
        "New teams default to user.",
        show_default=False,
    ),
]
TeamAppsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--app",
        help="An app of the organization the team reaches; repeatable or comma-separated.",
        show_default=False,
    ),
]
TeamMembersOption = Annotated[
    list[str] | None,
    typer.Option(
        "--member",
        help="A member of the organization in the team; repeatable or comma-separated.",
        show_default=False,
    ),
]


def _actor(org_id: str):
    from scopegate.services.accounts import cli_actor

    return cli_actor(org_id)


def _org(conn: Connection, org_id: str) -> OrgRecord:
    """The organization, or a message naming it (the service's answer is deliberately bare)."""
    from scopegate.contract.status import does_not_exist
    from scopegate.store import orgs

    found = orgs.get(conn, org_id)
    if found is None:
        raise does_not_exist(f"No organization '{org_id}'.")
    return found


def _documents():
    # The extension routes' JSON shapes, so scripts read the CLI and the API alike.
    from scopegate.transports.rest import orgs as rest_orgs

    return rest_orgs


def _team_rows(teams: list[TeamRecord]) -> list[list[str]]:
    return [
        [t.team_id, t.name, t.role, ", ".join(t.app_ids) or "-", ", ".join(t.user_ids) or "-"]
        for t in teams
    ]


TEAM_COLUMNS = ("team id", "name", "role", "apps", "members")


def _member_rows(members: list[MemberRecord]) -> list[list[str]]:
    return [[m.user_id, m.email, m.role, out.when(m.created_at)] for m in members]


@orgs_app.command("create")
def orgs_create(
    org_id: OrgArgument,
    admin: Annotated[
        str,
        typer.Option("--admin", help="The user who becomes its first admin.", show_default=False),
    ],
    name: Annotated[str, typer.Option("--name", help="Display name (default: the id).")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Create an organization with a first admin."""
    from scopegate.services import organizations

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        org = organizations.create(conn, org_id, name, admin, _actor(org_id))
    if as_json:
        out.emit_json({"organization": _documents().org_json(org), "admin": admin})
        return
    out.print_message(f"Created organization {org.org_id} ({org.name}); admin: {admin}.")


@orgs_app.command("list")
def orgs_list(
    user: Annotated[
        str | None,
        typer.Option(
            "--user", help="Only this user's organizations, with their role.", show_default=False
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """List every organization, or those a user belongs to."""
    from scopegate.store import orgs

    with _open(data_dir, database_url) as services, services.engine.connect() as conn:
        if user is not None:
            _user(conn, user)
            found = orgs.organizations_of(conn, user)
        else:
            found = [(org, None) for org in orgs.list_all(conn)]
            sizes = {org.org_id: len(orgs.members(conn, org.org_id)) for org, _ in found}
    documents = _documents()
    if as_json:
        listed = [documents.org_json(org, role) for org, role in found]
        out.emit_json(
            {"user_id": user, "organizations": listed} if user else {"organizations": listed}
        )
        return
    if user is not None:
        out.print_table(
            f"Organizations of {user}",
            ("org id", "name", "role", "created"),
            [[o.org_id, o.name, role, out.when(o.created_at)] for o, role in found],
            no_wrap=("org id",),
            empty=f"User {user} belongs to no organization.",
        )
        return
    out.print_table(
        "Organizations",
        ("org id", "name", "members", "created"),
        [[o.org_id, o.name, str(sizes[o.org_id]), out.when(o.created_at)] for o, _ in found],
        no_wrap=("org id",),
        empty="No organizations.",
    )


@orgs_app.command("show")
def orgs_show(
    org_id: OrgArgument,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Show an organization: its members with their roles, and its teams."""
    from scopegate.services import organizations

    with _open(data_dir, database_url) as services, services.engine.connect() as conn:
        _org(conn, org_id)
        found = organizations.view(conn, org_id)
    if as_json:
        documents = _documents()
        out.emit_json(
            {
                "organization": documents.org_json(found.org),
                "members": [documents.member_json(m) for m in found.members],
                "teams": [documents.team_json(t) for t in found.teams],
            }
        )
        return
    out.print_message(
        f"Organization {found.org.org_id} ({found.org.name}), "
        f"created {out.when(found.org.created_at)}."
    )
    out.print_table(
        "Members",
        ("user id", "email", "role", "since"),
        _member_rows(found.members),
        no_wrap=("user id",),
        empty="No members.",
    )
    out.print_table(
        "Teams", TEAM_COLUMNS, _team_rows(found.teams), no_wrap=("team id",), empty="No teams."
    )


@orgs_app.command("delete")
def orgs_delete(
    org_id: OrgArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Delete an organization with its apps, their keys, its members and teams."""
    from scopegate.services import organizations
    from scopegate.store import apps

    with _open(data_dir, database_url) as services:
        with services.engine.connect() as conn:
            _org(conn, org_id)
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
            removed = organizations.delete(conn, org_id, _actor(org_id))
    if as_json:
        out.emit_json(
            {"id": org_id, "deleted": True, "apps_deleted": app_ids, "keys_deleted": removed}
        )
        return
    out.print_message(
        f"Deleted organization {org_id}, its {len(app_ids)} app(s) and {len(removed)} key(s)."
    )


# --- members -------------------------------------------------------------------------------

OrgRoleOption = Annotated[
    OrgRole,
    typer.Option("--role", case_sensitive=False, help="The member's role.", show_default=False),
]


@members_app.command("add")
def members_add(
    org_id: OrgArgument,
    role: OrgRoleOption,
    user: Annotated[
        str | None, typer.Option("--user", help="The user's id.", show_default=False)
    ] = None,
    email: Annotated[
        str | None,
        typer.Option("--email", help="The email of an existing user.", show_default=False),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Add an existing user to an organization, by id or email, with a role."""
    from scopegate.services import organizations

    if bool(user) == bool(email):
        _usage("Name the user with --user or --email (one of them).")
    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _org(conn, org_id)
        member = organizations.add_member(
            conn,
            org_id,
            user_id=user or "",
            email=email or "",
            role=role.value,
            actor=_actor(org_id),
        )
    if as_json:
        out.emit_json({"org_id": org_id, "member": _documents().member_json(member)})
        return
    out.print_message(f"Added {member.user_id} to {org_id} as {member.role}.")


@members_app.command("set-role")
def members_set_role(
    org_id: OrgArgument,
    user_id: Annotated[str, typer.Argument(help="The member's user id.", show_default=False)],
    role: Annotated[
        OrgRole, typer.Argument(case_sensitive=False, help="The new role.", show_default=False)
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Change a member's role; the last admin keeps theirs."""
    from scopegate.services import organizations

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _org(conn, org_id)
        organizations.set_role(conn, org_id, user_id, role.value, _actor(org_id))
    if as_json:
        out.emit_json({"org_id": org_id, "user_id": user_id, "role": role.value})
        return
    out.print_message(f"{user_id} is now {role.value} in {org_id}.")


@members_app.command("remove")
def members_remove(
    org_id: OrgArgument,
    user_id: Annotated[str, typer.Argument(help="The member's user id.", show_default=False)],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Remove a member from the organization and its teams; the last admin stays."""
    from scopegate.services import organizations

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _org(conn, org_id)
        organizations.remove_member(conn, org_id, user_id, _actor(org_id))
    if as_json:
        out.emit_json({"org_id": org_id, "user_id": user_id, "removed": True})
        return
    out.print_message(f"Removed {user_id} from {org_id}.")


# --- teams ---------------------------------------------------------------------------------


def _print_team(message: str, team: TeamRecord, as_json: bool) -> None:
    if as_json:
        out.emit_json({"org_id": team.org_id, "team": _documents().team_json(team)})
        return
    out.print_message(message)
    out.print_table("", TEAM_COLUMNS, _team_rows([team]), no_wrap=("team id",))


@teams_app.command("create")
def teams_create(
    org_id: OrgArgument,
    team_id: TeamArgument,
    name: TeamNameOption = None,
    role: TeamRoleOption = None,
    app: TeamAppsOption = None,
    member: TeamMembersOption = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Create a team: its members reach its apps with the team's role."""
    from scopegate.services import organizations

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _org(conn, org_id)
        team = organizations.save_team(
            conn,
            org_id,
            team_id,
            name=name,
            role=role.value if role else None,
            app_ids=_names(app),
            user_ids=_names(member),
            create=True,
            actor=_actor(org_id),
        )
    _print_team(f"Created team {team.team_id} in {org_id}.", team, as_json)


@teams_app.command("patch")
def teams_patch(
    org_id: OrgArgument,
    team_id: TeamArgument,
    name: TeamNameOption = None,
    role: TeamRoleOption = None,
    app: TeamAppsOption = None,
    member: TeamMembersOption = None,
    no_apps: Annotated[bool, typer.Option("--no-apps", help="Take every app away.")] = False,
    no_members: Annotated[
        bool, typer.Option("--no-members", help="Take every member away.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Change a team: the fields given are overwritten (--app and --member replace the
    whole list), the others kept."""
    from scopegate.services import organizations

    if (app and no_apps) or (member and no_members):
        _usage("Give --app or --no-apps, --member or --no-members, not both.")
    if name is None and role is None and not (app or member or no_apps or no_members):
        _usage(
            "Nothing to change: give --name, --role, --app, --member, --no-apps or --no-members."
        )
    app_ids = [] if no_apps else (_names(app) if app else None)
    user_ids = [] if no_members else (_names(member) if member else None)
    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _org(conn, org_id)
        team = organizations.save_team(
            conn,
            org_id,
            team_id,
            name=name,
            role=role.value if role else None,
            app_ids=app_ids,
            user_ids=user_ids,
            create=False,
            actor=_actor(org_id),
        )
    _print_team(f"Updated team {team.team_id} in {org_id}.", team, as_json)


@teams_app.command("delete")
def teams_delete(
    org_id: OrgArgument,
    team_id: TeamArgument,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Delete a team: its members keep what their organization role gives them."""
    from scopegate.services import organizations

    with _open(data_dir, database_url) as services, services.engine.begin() as conn:
        _org(conn, org_id)
        organizations.delete_team(conn, org_id, team_id, _actor(org_id))
    if as_json:
        out.emit_json({"org_id": org_id, "id": team_id, "deleted": True})
        return
    out.print_message(f"Deleted team {team_id} of {org_id}.")
