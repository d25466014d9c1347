"""The database itself holds one account per id whatever its letter case: the backstop for
two sign-ups (`Alice`, `alice`) racing past the service's check. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError

from scopegate.store import orgs, users
from scopegate.store.database import migrate, open_engine, sqlite_url


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"sg_{uuid.uuid4().hex[:12]}")
    engine = open_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_a_case_variant_of_a_user_id_cannot_be_stored(engine):
    with engine.begin() as conn:
        users.create(conn, "Carol", "carol@example.com", None)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        users.create(conn, "carol", "carol2@example.com", None)


def test_an_organization_cannot_take_a_users_id_in_other_case(engine):
    with engine.begin() as conn:
        users.create(conn, "dave", "dave@example.com", None)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        orgs.create(conn, "DAVE", "Dave's org")
