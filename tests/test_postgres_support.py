"""The throwaway PostgreSQL cluster the suite's PostgreSQL backend runs on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support import postgres

REASON = postgres.available()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"PostgreSQL unavailable: {REASON}")


def test_cluster_serves_separate_databases():
    with postgres.PostgresCluster() as pg:
        base_dir = pg.base_dir
        urls = [pg.create_database("sg_support_a"), pg.create_database("sg_support_b")]
        assert urls[0] == f"postgresql+psycopg://{pg.user}@127.0.0.1:{pg.port}/sg_support_a"

        engines = [sa.create_engine(url) for url in urls]
        try:
            for engine in engines:
                with engine.connect() as conn:
                    assert conn.execute(sa.text("select 1")).scalar_one() == 1

            # Each database is its own: a table made in one is not in the other.
            with engines[0].begin() as conn:
                conn.execute(sa.text("create table only_in_a (id int)"))
            assert sa.inspect(engines[0]).has_table("only_in_a")
            assert not sa.inspect(engines[1]).has_table("only_in_a")
        finally:
            for engine in engines:
                engine.dispose()

        with pytest.raises(ValueError):
            pg.create_database("bad; name")

    assert base_dir is not None
    assert not base_dir.exists(), "stop() should remove the cluster's directory"
