"""`scopegate db current | check | upgrade`: the schema's migrations, run on demand.

`serve` upgrades on start unless --no-migrate; these commands let an operator see, check
(e.g. in a deploy script) or apply migrations apart from serving."""

from __future__ import annotations

import typer

from scopegate.cli import output as out
from scopegate.cli.common import Database, with_database
from scopegate.store.database import SchemaMismatch, SchemaState, migrate, schema_state

db_app = typer.Typer(help="The database schema: its revisions and migrations.")


def _document(state: SchemaState) -> dict[str, object]:
    return {
        "state": state.verdict,
        "applied": sorted(state.applied),
        "heads": sorted(state.heads),
        "pending": list(state.pending),
        "unknown": sorted(state.unknown),
    }


def _listed(revisions: frozenset[str]) -> str:
    return ", ".join(sorted(revisions)) or "none"


@db_app.command("current")
@with_database
def current(*, db: Database) -> None:
    """Show the database's revisions and whether they are this scopegate's newest."""
    with db.engine() as (_, engine):
        state = schema_state(engine)
    db.show(
        _document(state),
        f"applied: {_listed(state.applied)}",
        f"heads:   {_listed(state.heads)}",
        f"state:   {state.verdict}" + (f" ({state.problem()})" if state.problem() else ""),
    )


@db_app.command("check")
@with_database
def check(*, db: Database) -> None:
    """Exit 0 when the database is at this scopegate's newest revisions.

    Else say whether it is behind (migrations pending) or ahead (a newer scopegate migrated
    it), and exit 1."""
    with db.engine() as (_, engine):
        state = schema_state(engine)
    problem = state.problem()
    if problem is None:
        db.show(_document(state), f"the database is current ({_listed(state.heads)})")
        return
    if db.as_json:
        out.emit_json(_document(state))
    out.fail(problem)


@db_app.command("upgrade")
@with_database
def upgrade(*, db: Database) -> None:
    """Apply the pending migrations (every branch to its head); refuses a newer database."""
    with db.engine() as (_, engine):
        before = schema_state(engine)
        try:
            migrate(engine)
        except SchemaMismatch as exc:
            out.fail(str(exc))
        after = schema_state(engine)
    applied = [rev for rev in before.pending if rev not in after.pending]
    db.show(
        {**_document(after), "upgraded": applied},
        f"applied {len(applied)} migration(s): {', '.join(applied)}"
        if applied
        else "nothing to do: the database is current",
        f"now at: {_listed(after.applied)}",
    )
