"""input concepts keep the order they were given"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"  # inputs' branch; beside 0005 (models)


def upgrade() -> None:
    # Labels stored before this revision all get position 0; reads order ties by concept
    # id, so they keep the order they were answered in until then.
    op.add_column(
        "input_concepts",
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("input_concepts", "position")
