"""models keep the output_info given to PostModels, and answer to alias ids"""

import sqlalchemy as sa
from alembic import op

from scopegate.store.migrations.columns import cascade

revision = "0007"
down_revision = "0005"  # models' branch; beside 0006 (input concept order)


def upgrade() -> None:
    op.add_column("models", sa.Column("output_info", sa.Text(), server_default="", nullable=False))
    op.create_table(
        "model_aliases",
        sa.Column("app_pk", sa.Integer(), nullable=False),
        sa.Column("alias_id", sa.String(length=64), nullable=False),
        sa.Column("model_pk", sa.Integer(), nullable=False),
        cascade("app_pk", "apps.id"),
        cascade("model_pk", "models.id"),
        sa.PrimaryKeyConstraint("app_pk", "alias_id"),
    )


def downgrade() -> None:
    op.drop_table("model_aliases")
    op.drop_column("models", "output_info")
