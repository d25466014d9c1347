"""Ids a new account may take, on the real server: organizations (REST) and users (the
CLI's `users create`) share one namespace, compared without letter case, and some ids are
reserved."""

from __future__ import annotations

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import ORGS, rest
from tests.support.clients import new_id


def refused(status: int, body: dict, words: str) -> bool:
    return (
        status == 400
        and body["status"]["code"] == codes.CONN_INVALID_REQUEST
        and words in body["status"]["details"]
    )


@pytest.mark.parametrize("org_id", ["me", "ME", "admin", "Root"])
def test_reserved_organization_ids_are_refused(server, user, org_id):
    _, pat = user
    status, body = rest(server, "POST", ORGS, pat, {"id": org_id, "name": "x"})
    assert refused(status, body, "is reserved"), body


def test_organization_ids_that_differ_only_in_case_are_refused(server, user):
    user_id, pat = user
    for taken in (user_id.upper(), user_id.capitalize()):
        status, body = rest(server, "POST", ORGS, pat, {"id": taken, "name": "x"})
        assert refused(status, body, f"'{user_id}' exists"), body
    org_id = new_id("org")
    status, body = rest(server, "POST", ORGS, pat, {"id": org_id, "name": "x"})
    assert status == 200, body
    status, body = rest(server, "POST", ORGS, pat, {"id": org_id.upper(), "name": "x"})
    assert refused(status, body, f"'{org_id}' exists"), body


def test_user_ids_that_differ_only_in_case_or_are_reserved_are_refused(server, user):
    user_id, pat = user
    org_id = new_id("org")
    assert rest(server, "POST", ORGS, pat, {"id": org_id, "name": "x"})[0] == 200
    for taken, existing in ((user_id.upper(), user_id), (org_id.upper(), org_id)):
        result = server.cli("users", "create", taken, "--email", f"{new_id()}@example.com")
        assert result.returncode != 0
        assert f"'{existing}' exists" in result.stderr, result.stderr
    result = server.cli("users", "create", "Admin", "--email", f"{new_id()}@example.com")
    assert result.returncode != 0 and "is reserved" in result.stderr, result.stderr
