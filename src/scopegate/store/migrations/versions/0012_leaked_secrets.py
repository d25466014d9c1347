"""credential governance: leaked secrets (what secret-scanning reports revoked, for their
owners to see), refusal records (why requests were refused, by request id), organization
token policies and admins' decisions on members' tokens
"""

import sqlalchemy as sa
from alembic import op

from scopegate.store.migrations.columns import cascade, serial_id, timestamp

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "leaked_secrets",
        *serial_id(),
        timestamp("at"),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("credential_kind", sa.String(length=32), nullable=False),
        sa.Column("credential_id", sa.String(length=64), nullable=False),
        sa.Column("masked", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("location", sa.Text(), nullable=False, server_default=""),
        cascade("user_id", "users.user_id"),
    )
    op.create_index("ix_leaked_secrets_user_at", "leaked_secrets", ["user_id", "at"])
    op.create_table(
        "refusals",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        timestamp("at"),
        sa.Column("method", sa.String(length=128), nullable=False),
        sa.Column("target_user", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("target_app", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("caller_user", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("credential_kind", sa.String(length=32), nullable=False, server_default=""),
        sa.Column("credential_id", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("client_address", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("details", sa.Text(), nullable=False, server_default=""),
        sa.Column("required", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("held", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("missing", sa.Text(), nullable=False, server_default="[]"),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_refusals_at", "refusals", ["at"])
    op.create_index("ix_refusals_caller_at", "refusals", ["caller_user", "at"])
    op.create_table(
        "org_token_policies",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("max_lifetime_days", sa.Integer(), nullable=True),
        sa.Column("require_expiry", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("require_fine_grained", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("approval_required", sa.Boolean(), nullable=False, server_default=sa.false()),
        timestamp("modified_at"),
        cascade("org_id", "users.user_id"),
        sa.PrimaryKeyConstraint("org_id"),
    )
    op.create_table(
        "token_approvals",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("decided_by", sa.String(length=64), nullable=False, server_default=""),
        timestamp("decided_at"),
        cascade("org_id", "users.user_id"),
        sa.PrimaryKeyConstraint("org_id", "key_id"),
    )


def downgrade() -> None:
    op.drop_table("token_approvals")
    op.drop_table("org_token_policies")
    op.drop_index("ix_refusals_caller_at", table_name="refusals")
    op.drop_index("ix_refusals_at", table_name="refusals")
    op.drop_table("refusals")
    op.drop_index("ix_leaked_secrets_user_at", table_name="leaked_secrets")
    op.drop_table("leaked_secrets")
