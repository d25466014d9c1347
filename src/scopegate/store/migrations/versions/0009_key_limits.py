"""per-key rate limits, usage quotas and address allowlists; per-user rates"""

import sqlalchemy as sa
from alembic import op

from scopegate.store.migrations.columns import cascade

revision = "0009"
down_revision = "0003"  # a branch of its own: limits hang off keys and users only


def upgrade() -> None:
    op.create_table(
        "key_limits",
        sa.Column("key_pk", sa.Integer(), nullable=False),
        sa.Column("rates", sa.Text(), server_default="[]", nullable=False),
        sa.Column("allow", sa.Text(), server_default="[]", nullable=False),
        sa.Column("methods", sa.Text(), server_default="[]", nullable=False),
        sa.Column("usage_remaining", sa.BigInteger(), nullable=True),
        sa.Column("refill_period", sa.String(length=16), nullable=True),
        sa.Column("refill_amount", sa.BigInteger(), nullable=True),
        sa.Column("refill_index", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), server_default="0", nullable=False),
        cascade("key_pk", "keys.id"),
        sa.PrimaryKeyConstraint("key_pk"),
    )
    op.create_table(
        "user_limits",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("rates", sa.Text(), server_default="[]", nullable=False),
        cascade("user_id", "users.user_id"),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("user_limits")
    op.drop_table("key_limits")
