"""Migrations: the quick up-to-date check agrees with Alembic, and skips it when it can."""

from __future__ import annotations

import subprocess
import sys

from alembic.config import Config
from alembic.script import ScriptDirectory

from scopegate.store.database import (
    MIGRATIONS,
    applied_revisions,
    migrate,
    open_engine,
    script_heads,
    sqlite_url,
)


def test_script_heads_are_alembics_heads():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert script_heads() == frozenset(ScriptDirectory.from_config(config).get_heads())
    assert script_heads()  # never empty: an empty set would mean "not understood"


def test_a_new_database_is_migrated_to_the_heads_and_then_left_alone(tmp_path):
    engine = open_engine(sqlite_url(tmp_path))
    try:
        assert applied_revisions(engine) is None
        migrate(engine)
        assert applied_revisions(engine) == script_heads()
    finally:
        engine.dispose()
    # A second start on the migrated database does not even import Alembic.
    code = (
        "import sys; from pathlib import Path;"
        "from scopegate.store.database import migrate, open_engine, sqlite_url;"
        f"migrate(open_engine(sqlite_url(Path({str(tmp_path)!r}))));"
        "print('alembic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
