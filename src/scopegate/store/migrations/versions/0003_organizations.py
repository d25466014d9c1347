"""organizations and teams"""

import sqlalchemy as sa
from alembic import op

from scopegate.store.migrations.columns import cascade, serial_id, timestamp

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("kind", sa.String(length=16), server_default="user", nullable=False)
    )
    op.create_table(
        "org_members",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        timestamp("created_at"),
        cascade("org_id", "users.user_id"),
        cascade("user_id", "users.user_id"),
        sa.PrimaryKeyConstraint("org_id", "user_id"),
    )
    op.create_index("ix_org_members_user", "org_members", ["user_id"])
    op.create_table(
        "teams",
        *serial_id(),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        timestamp("created_at"),
        cascade("org_id", "users.user_id"),
        sa.UniqueConstraint("org_id", "team_id", name="uq_teams_org_team"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        cascade("team_pk", "teams.id"),
        cascade("user_id", "users.user_id"),
        sa.PrimaryKeyConstraint("team_pk", "user_id"),
    )
    op.create_index("ix_team_members_user", "team_members", ["user_id"])
    op.create_table(
        "team_apps",
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("app_pk", sa.Integer(), nullable=False),
        cascade("team_pk", "teams.id"),
        cascade("app_pk", "apps.id"),
        sa.PrimaryKeyConstraint("team_pk", "app_pk"),
    )


def downgrade() -> None:
    op.drop_table("team_apps")
    op.drop_index("ix_team_members_user", table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
    op.drop_index("ix_org_members_user", table_name="org_members")
    op.drop_table("org_members")
    op.drop_column("users", "kind")
