"""Services as the server opens them, on a SQLite file, for tests that drive the caches and
the dispatcher in process (to choose exactly when a change lands)."""

from __future__ import annotations

import pytest

from scopegate.server import config, runtime
from scopegate.services import users as user_services


@pytest.fixture
def services(tmp_path):
    services = runtime.open_services(config.resolve(tmp_path, None))
    yield services
    services.engine.dispose()


def sign_up(services, user_id: str) -> str:
    """A user with its default PAT; returns the PAT."""
    with services.engine.begin() as conn:
        _, pat = user_services.sign_up(
            conn, services.hasher, user_id, f"{user_id}@example.com", None
        )
    return pat
