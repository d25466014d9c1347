"""models, model versions and registered weights"""

import sqlalchemy as sa
from alembic import op

from scopegate.store.migrations.columns import cascade, created_and_modified, serial_id, timestamp

revision = "0005"
down_revision = "0003"  # beside 0004 (inputs): the server upgrades to all heads


def upgrade() -> None:
    op.create_table(
        "models",
        *serial_id(),
        sa.Column("app_pk", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("model_type_id", sa.String(length=64), nullable=False),
        *created_and_modified(),
        cascade("app_pk", "apps.id"),
        sa.UniqueConstraint("app_pk", "model_id", name="uq_models_app_model"),
    )
    op.create_table(
        "model_versions",
        *serial_id(),
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        timestamp("created_at"),
        cascade("model_pk", "models.id"),
        sa.UniqueConstraint("model_pk", "version_id", name="uq_model_versions_model_version"),
    )
    op.create_table(
        "model_weights",
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("preprocessing", sa.Text(), nullable=False),
        cascade("version_pk", "model_versions.id"),
        sa.PrimaryKeyConstraint("version_pk"),
    )


def downgrade() -> None:
    op.drop_table("model_weights")
    op.drop_table("model_versions")
    op.drop_table("models")
