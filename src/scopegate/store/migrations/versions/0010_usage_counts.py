"""usage analytics: requests counted per hour by credential, app, method and outcome"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0001"  # an independent branch: the tables depend on nothing else


def upgrade() -> None:
    op.create_table(
        "usage_counts",
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("start_hour", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("caller_id", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hours", "start_hour", "credential_id", "owner_id", "app_id", "method", "outcome"
        ),
    )
    op.create_index("ix_usage_counts_credential", "usage_counts", ["credential_id", "start_hour"])
    op.create_index("ix_usage_counts_app", "usage_counts", ["owner_id", "app_id", "start_hour"])
    op.create_table(
        "usage_addresses",
        sa.Column("credential_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("credential_id", "day", "address"),
    )


def downgrade() -> None:
    op.drop_table("usage_addresses")
    op.drop_index("ix_usage_counts_app", table_name="usage_counts")
    op.drop_index("ix_usage_counts_credential", table_name="usage_counts")
    op.drop_table("usage_counts")
