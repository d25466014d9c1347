"""Columns and constraints that the migration scripts build alike.

What these build is part of what each revision using them creates: change one only if
every revision's DDL stays exactly the same (tests/test_migrations.py holds a migrated
database equal to store/schema.py)."""

from __future__ import annotations

import sqlalchemy as sa


def serial_id() -> tuple[sa.Column, sa.PrimaryKeyConstraint]:
    """The table's own integer key `id`: its column and its primary key."""
    column = sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)
    return column, sa.PrimaryKeyConstraint("id")


def timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    """A UTC moment; required unless said otherwise."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def created_and_modified() -> tuple[sa.Column, sa.Column]:
    """When a row of a table whose rows change was created, and last changed."""
    return timestamp("created_at"), timestamp("modified_at")


def cascade(column: str, target: str) -> sa.ForeignKeyConstraint:
    """`column` names a row by `target` ("table.column"): the row goes when that one does."""
    return sa.ForeignKeyConstraint([column], [target], ondelete="CASCADE")
