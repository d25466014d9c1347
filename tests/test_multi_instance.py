"""Two server processes on one database: a revoked credential, a removed organization
member or a narrowed or removed collaborator grant stops working on the other within the
bound (1 second), on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.api import http
from tests.support.clients import new_id
from tests.support.server_process import ServerProcess
from tests.support.servers import BACKENDS

BOUND_SECONDS = 1.0
ORGS = "/scopegate/v1/organizations"


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


def _answers_within_bound(server, secret: str, path: str, expected: int, since: float) -> int:
    """Ask until the answer is `expected`, for up to the bound after `since`; the last code."""
    while True:
        code = _status(server, secret, path)
        if code == expected or time.monotonic() - since > BOUND_SECONDS:
            return code
        time.sleep(0.02)


def _ok(server, method: str, path: str, secret: str, body: dict | None = None) -> dict:
    status, reply = http(
        server, method, path, headers={"authorization": f"Key {secret}"}, body=body or {}
    )
    assert status == 200 and reply["status"]["code"] == 10000, reply
    return reply


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


def test_org_member_removal_and_role_change_on_one_process_apply_on_the_other(pair):
    first, second = pair
    admin_pat = first.create_user(new_id())
    member_id = new_id()
    member_pat = first.create_user(member_id)
    org_id, app_id = new_id("org"), new_id("app")
    _ok(first, "POST", ORGS, admin_pat, {"id": org_id})
    _ok(first, "POST", f"/v2/users/{org_id}/apps", admin_pat, {"apps": [{"id": app_id}]})
    app = f"/v2/users/{org_id}/apps/{app_id}"
    member = f"{ORGS}/{org_id}/members/{member_id}"

    assert _status(second, member_pat, app) == 11101  # an outsider, cached on the second
    body = {"user_id": member_id, "role": "org_user"}
    _ok(first, "POST", f"{ORGS}/{org_id}/members", admin_pat, body)
    assert _answers_within_bound(second, member_pat, app, 10000, time.monotonic()) == 10000
    # A role without access to the app (no team gives it): refused on the other process.
    _ok(first, "PATCH", member, admin_pat, {"role": "team_contributor"})
    changed_at = time.monotonic()
    assert _status(first, member_pat, app) == 11101  # at once where it was handled
    assert _answers_within_bound(second, member_pat, app, 11101, changed_at) == 11101

    _ok(first, "PATCH", member, admin_pat, {"role": "org_user"})
    assert _answers_within_bound(second, member_pat, app, 10000, time.monotonic()) == 10000
    _ok(first, "DELETE", member, admin_pat)
    removed_at = time.monotonic()
    assert _status(first, member_pat, app) == 11101
    assert _answers_within_bound(second, member_pat, app, 11101, removed_at) == 11101


def test_collaborator_narrowed_or_removed_on_one_process_applies_on_the_other(pair):
    first, second = pair
    owner_id, guest_id, app_id = new_id(), new_id(), new_id("app")
    owner_pat = first.create_user(owner_id)
    guest_pat = first.create_user(guest_id)
    _ok(first, "POST", "/v2/users/me/apps", owner_pat, {"apps": [{"id": app_id}]})
    app = f"/v2/users/{owner_id}/apps/{app_id}"  # GetApp: Apps_Get and Workflows_Get
    collaborators = f"/v2/users/me/apps/{app_id}/collaborators"

    def grant(*scopes: str) -> dict:
        return {"action": "overwrite", "collaborators": [{"id": grant_id, "scopes": list(scopes)}]}

    added = _ok(
        first,
        "POST",
        collaborators,
        owner_pat,
        {"collaborators": [{"user": {"id": guest_id}, "scopes": ["Apps_Get", "Workflows_Get"]}]},
    )
    grant_id = added["collaborators"][0]["id"]
    assert _answers_within_bound(second, guest_pat, app, 10000, time.monotonic()) == 10000

    _ok(first, "PATCH", collaborators, owner_pat, grant("Workflows_Get"))
    narrowed_at = time.monotonic()
    assert _status(first, guest_pat, app) == 11007
    assert _answers_within_bound(second, guest_pat, app, 11007, narrowed_at) == 11007

    _ok(first, "PATCH", collaborators, owner_pat, grant("Apps_Get", "Workflows_Get"))
    assert _answers_within_bound(second, guest_pat, app, 10000, time.monotonic()) == 10000
    _ok(first, "DELETE", collaborators, owner_pat, {"collaborator_ids": [grant_id]})
    removed_at = time.monotonic()
    assert _status(first, guest_pat, app) == 11101
    assert _answers_within_bound(second, guest_pat, app, 11101, removed_at) == 11101
