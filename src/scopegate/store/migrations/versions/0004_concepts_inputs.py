"""concepts, inputs and their labels"""

import sqlalchemy as sa
from alembic import op

from scopegate.store.migrations.columns import cascade, created_and_modified, serial_id

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "concepts",
        *serial_id(),
        sa.Column("app_pk", sa.Integer(), nullable=False),
        sa.Column("concept_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("name_folded", sa.String(length=255), nullable=False),
        sa.Column("language", sa.String(length=16), server_default="", nullable=False),
        sa.Column("metadata", sa.Text(), server_default="{}", nullable=False),
        *created_and_modified(),
        cascade("app_pk", "apps.id"),
        sa.UniqueConstraint("app_pk", "concept_id", name="uq_concepts_app_concept"),
    )
    op.create_index("ix_concepts_app_name", "concepts", ["app_pk", "name_folded"])
    op.create_table(
        "inputs",
        *serial_id(),
        sa.Column("app_pk", sa.Integer(), nullable=False),
        sa.Column("input_id", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), server_default="", nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("width", sa.Integer(), server_default="0", nullable=False),
        sa.Column("height", sa.Integer(), server_default="0", nullable=False),
        sa.Column("mime", sa.String(length=32), server_default="", nullable=False),
        sa.Column("color_mode", sa.String(length=16), server_default="", nullable=False),
        sa.Column("metadata", sa.Text(), server_default="{}", nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("status_details", sa.Text(), server_default="", nullable=False),
        *created_and_modified(),
        cascade("app_pk", "apps.id"),
        sa.UniqueConstraint("app_pk", "input_id", name="uq_inputs_app_input"),
    )
    op.create_index("ix_inputs_status", "inputs", ["status_code"])
    op.create_table(
        "input_concepts",
        sa.Column("input_pk", sa.Integer(), nullable=False),
        sa.Column("concept_pk", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        cascade("input_pk", "inputs.id"),
        cascade("concept_pk", "concepts.id"),
        sa.PrimaryKeyConstraint("input_pk", "concept_pk"),
    )
    op.create_index("ix_input_concepts_concept", "input_concepts", ["concept_pk"])


def downgrade() -> None:
    op.drop_index("ix_input_concepts_concept", table_name="input_concepts")
    op.drop_table("input_concepts")
    op.drop_index("ix_inputs_status", table_name="inputs")
    op.drop_table("inputs")
    op.drop_index("ix_concepts_app_name", table_name="concepts")
    op.drop_table("concepts")
