"""Two server processes on one database: a revoked credential stops working on the other
within the bound (1 second), on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import BACKENDS, new_id
from tests.server_process import ServerProcess
from tests.test_authentication import http

BOUND_SECONDS = 1.0


@pytest.fixture(scope="module", params=BACKENDS)
def pair(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("shared")
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_cluster").create_database(
            f"pair_{uuid.uuid4().hex[:10]}"
        )
    first = ServerProcess(data_dir=data_dir, database_url=url).start()
    second = ServerProcess(data_dir=data_dir, database_url=url).start()
    yield first, second
    assert first.stop() == 0 and second.stop() == 0


def _status(server, secret: str, path: str = "/v2/users/me/apps") -> int:
    return http(server, "GET", path, headers={"authorization": f"Key {secret}"})[1]["status"][
        "code"
    ]


def _refused_within_bound(server, secret: str, since: float) -> bool:
    while time.monotonic() - since <= BOUND_SECONDS:
        if _status(server, secret) != 10000:
            return True
        time.sleep(0.02)
    return False


def _new_pat(server, pat: str, scopes=("All",)) -> tuple[str, str]:
    status, body = http(
        server,
        "POST",
        "/v2/users/me/keys",
        headers={"authorization": f"Key {pat}"},
        body={"keys": [{"type": "personal_access_token", "scopes": list(scopes)}]},
    )
    assert status == 200, body
    secret = body["keys"][0]["id"]
    status, body = http(
        server, "GET", f"/v2/users/me/keys/{secret}", headers={"authorization": f"Key {pat}"}
    )
    return secret, body["key"]["id"]


def test_delete_on_one_process_revokes_on_the_other(pair):
    first, second = pair
    pat = first.create_user(new_id())
    secret, public_id = _new_pat(first, pat)
    assert _status(second, secret) == 10000  # now cached on the second process
    status, _ = http(
        first,
        "DELETE",
        f"/v2/users/me/keys/{public_id}",
        headers={"authorization": f"Key {pat}"},
        body={},
    )
    deleted_at = time.monotonic()
    assert status == 200
    assert _status(first, secret) != 10000  # at once where it was handled
    assert _refused_within_bound(second, secret, deleted_at)


def test_roll_and_patch_on_one_process_apply_on_the_other(pair):
    first, second = pair
    pat = first.create_user(new_id())
    secret, public_id = _new_pat(first, pat)
    assert _status(second, secret) == 10000
    status, body = http(
        first,
        "POST",
        f"/scopegate/v1/users/me/keys/{public_id}/roll",
        headers={"authorization": f"Key {pat}"},
        body={"grace_seconds": 0},
    )
    rolled_at = time.monotonic()
    assert status == 200, body
    assert _refused_within_bound(second, secret, rolled_at)
    new_secret = body["keys"][0]["id"]
    assert _status(second, new_secret) == 10000
    status, _ = http(
        first,
        "PATCH",
        "/v2/users/me/keys",
        headers={"authorization": f"Key {pat}"},
        body={"action": "overwrite", "keys": [{"id": public_id, "scopes": ["Inputs_Get"]}]},
    )
    patched_at = time.monotonic()
    assert status == 200
    assert _refused_within_bound(second, new_secret, patched_at)  # ListApps needs more now
