"""one account per id whatever its letter case"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0003"  # accounts' branch (users and organizations share the id space)

log = logging.getLogger("alembic.runtime.migration")
INDEX = "ux_users_user_id_folded"


def upgrade() -> None:
    # The sign-up and organization checks refuse `Alice` beside `alice`; this index closes
    # the race between two such requests. Ids that differ only in case and were stored
    # before those checks existed keep working: the index is then left out, and said so.
    clashes = (
        op.get_bind()
        .execute(
            sa.text("SELECT lower(user_id) FROM users GROUP BY lower(user_id) HAVING count(*) > 1")
        )
        .all()
    )
    if clashes:
        log.warning(
            "Not adding %s: %d account ids differ only in letter case. New clashes are "
            "still refused, but two sign-ups at the same instant could both pass.",
            INDEX,
            len(clashes),
        )
        return
    op.create_index(INDEX, "users", [sa.text("lower(user_id)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="users", if_exists=True)
