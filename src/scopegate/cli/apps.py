"""`scopegate apps`: a user's apps."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.common import Database, UserOption, require_app, require_user, with_database
from scopegate.contract.visibility import NAMES as VISIBILITY_NAMES
from scopegate.services.apps import create_app, delete_app
from scopegate.services.audit import cli_actor
from scopegate.store import apps

apps_app = typer.Typer(help="Manage apps.", no_args_is_help=True)


class Visibility(enum.StrEnum):
    private = "private"
    org = "org"
    public = "public"


VISIBILITY_VALUES = {Visibility(name): value for value, name in VISIBILITY_NAMES.items()}

AppIdArgument = Annotated[str, typer.Argument(help="The app's id.", show_default=False)]


@apps_app.command("list")
@with_database
def apps_list(user: UserOption, *, db: Database) -> None:
    """List a user's apps."""
    with db.connect() as (_, conn):
        require_user(conn, user)
        found = apps.list_for_user(conn, user, limit=10**9)
    documents = [out.app_document(a) for a in found]
    db.show(
        {"user_id": user, "apps": documents},
        out.Rows(
            f"Apps of {user}",
            ("app id", "name", "description", "visibility", "created"),
            [
                [d["id"], d["name"], d["description"], d["visibility"], out.when(a.created_at)]
                for d, a in zip(documents, found, strict=True)
            ],
            no_wrap=("app id",),
            empty=f"User {user} has no apps.",
        ),
    )


@apps_app.command("create")
@with_database
def apps_create(
    app_id: Annotated[str, typer.Argument(help="The new app's id.", show_default=False)],
    user: UserOption,
    description: Annotated[str, typer.Option("--description", help="What the app is for.")] = "",
    visibility: Annotated[
        Visibility, typer.Option("--visibility", help="Who may see the app.")
    ] = Visibility.private,
    *,
    db: Database,
) -> None:
    """Create an app and print its default API key (scope All), once."""
    with db.begin() as (services, conn):
        require_user(conn, user)
        record, default_key = create_app(
            conn,
            services.hasher,
            user,
            app_id,
            description=description,
            visibility=VISIBILITY_VALUES[visibility],
            actor=cli_actor(user),
        )
    db.show(
        {**out.app_document(record), "default_api_key": default_key},
        f"Created app {record.app_id} of {user} ({visibility.value}).",
        out.Secret("Default API key", default_key),
    )


@apps_app.command("delete")
@with_database
def apps_delete(app_id: AppIdArgument, user: UserOption, *, db: Database) -> None:
    """Delete an app and every key tied to it."""
    with db.begin() as (_, conn):
        require_user(conn, user)
        record = require_app(conn, user, app_id)
        removed = delete_app(conn, record, actor=cli_actor(user))
    db.show(
        {"id": record.app_id, "deleted": True, "keys_deleted": removed},
        f"Deleted app {record.app_id} of {user} and its {len(removed)} key(s).",
    )
