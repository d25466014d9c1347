"""collaborators"""

import sqlalchemy as sa
from alembic import op

from scopegate.store.migrations.columns import cascade, created_and_modified, serial_id

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "collaborators",
        *serial_id(),
        sa.Column("public_id", sa.String(length=64), nullable=False),
        sa.Column("app_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.Text(), server_default="[]", nullable=False),
        sa.Column("endpoints", sa.Text(), server_default="[]", nullable=False),
        *created_and_modified(),
        cascade("app_pk", "apps.id"),
        cascade("user_id", "users.user_id"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("app_pk", "user_id", name="uq_collaborators_app_user"),
    )
    op.create_index("ix_collaborators_user", "collaborators", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_collaborators_user", table_name="collaborators")
    op.drop_table("collaborators")
