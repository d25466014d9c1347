"""fine-grained PATs: the apps and organizations a key is limited to"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0003"  # credential governance's branch (keys exist since 0001)


def upgrade() -> None:
    # NULL: unlimited, today's behaviour for every existing key.
    op.add_column("keys", sa.Column("resources", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("resources")
