"""Issue 12's critical findings, as an attacker tried them: a grant on one app never opens
the account that owns it, a body never names an app the caller cannot reach, and a public
app never shows who collaborates on it. Over gRPC and the JSON channel, on both databases.

The world: alice owns `other-app` (dave granted `All` there), `secret-app` (private) and
`public-app` (PUBLIC, erin granted `All` there by alice's default app key).
"""

from __future__ import annotations

import json

import pytest
import requests
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import ORGS, call, me, ok
from tests.support.clients import Client, new_id

R = resources_pb2
S = service_pb2
MISSING = codes.CONN_DOES_NOT_EXIST


class World:
    def __init__(self, server, client: Client) -> None:
        self.server, self.client = server, client
        self.alice = new_id("alice")
        self.alice_pat = server.create_user(self.alice)
        self.dave = new_id("dave")
        self.dave_pat = server.create_user(self.dave)
        self.erin = new_id("erin")
        self.erin_pat = server.create_user(self.erin)
        self.stranger_pat = server.create_user(new_id("s"))
        self.other_app, _ = self.app("other-app")
        self.secret_app, _ = self.app("secret-app")
        self.public_app, self.public_key = self.app("public-app", R.Visibility.PUBLIC)
        self.grant(self.alice_pat, self.other_app, self.dave)
        # The chain's first link: an app key may add a collaborator (KeyAuth in the contract).
        self.grant(self.public_key, self.public_app, self.erin)

    def auth(self, secret: str):
        return self.client.auth(secret)

    def app(self, name: str, visibility: int = 0) -> tuple[str, str]:
        app = R.App(id=new_id(name))
        if visibility:
            app.visibility.gettable = visibility
        made = ok(
            self.client.stub.PostApps(
                S.PostAppsRequest(user_app_id=me(), apps=[app]), metadata=self.auth(self.alice_pat)
            )
        )
        return app.id, made.apps[0].metadata["default_api_key"]

    def grant(self, secret: str, app_id: str, who: str) -> None:
        ids = R.UserAppIDSet(user_id=self.alice, app_id=app_id)
        ok(
            self.client.stub.PostCollaborators(
                S.PostCollaboratorsRequest(
                    user_app_id=ids,
                    collaborators=[R.Collaborator(user=R.User(id=who), scopes=["All"])],
                ),
                metadata=self.auth(secret),
            )
        )

    def alices_keys(self) -> list[str]:
        listed = ok(
            self.client.stub.ListKeys(
                S.ListKeysRequest(user_app_id=me()), metadata=self.auth(self.alice_pat)
            )
        )
        return sorted(k.id for k in listed.keys)

    def alices_apps(self) -> dict[str, int]:
        listed = ok(
            self.client.stub.ListApps(
                S.ListAppsRequest(user_app_id=me()), metadata=self.auth(self.alice_pat)
            )
        )
        return {a.id: a.visibility.gettable for a in listed.apps}


@pytest.fixture
def world(server, client) -> World:
    return World(server, client)


def _account_calls(world: World, app_id: str):
    """Every account-level method the issue found open, naming alice and one of her apps."""
    ids = R.UserAppIDSet(user_id=world.alice, app_id=app_id)
    alices_pat_id = world.alices_keys()[0]
    return {
        "PostKeys": S.PostKeysRequest(
            user_app_id=ids, keys=[R.Key(description="x", scopes=["All"])]
        ),
        "ListKeys": S.ListKeysRequest(user_app_id=ids),
        "GetKey": S.GetKeyRequest(user_app_id=ids, key_id=alices_pat_id),
        "DeleteKey": S.DeleteKeyRequest(user_app_id=ids, key_id=alices_pat_id),
        "PostAuditLogSearches": S.PostAuditLogSearchesRequest(user_app_id=ids),
        "PostApps": S.PostAppsRequest(user_app_id=ids, apps=[R.App(id=new_id("planted"))]),
        "GetUser": S.GetUserRequest(user_app_id=ids),
        "ListCollaborations": S.ListCollaborationsRequest(user_app_id=ids),
        "ListAppKeys": S.ListAppKeysRequest(user_app_id=ids),
        "ListCollaborators": S.ListCollaboratorsRequest(user_app_id=ids),
        "DeleteApp": S.DeleteAppRequest(user_app_id=ids),
    }


@pytest.mark.parametrize("who", ["collaborator", "chained collaborator"])
def test_a_grant_on_one_app_never_opens_the_owners_account(world: World, who: str):
    secret, app_id = {
        "collaborator": (world.dave_pat, world.other_app),
        "chained collaborator": (world.erin_pat, world.public_app),
    }[who]
    keys_before, apps_before = world.alices_keys(), world.alices_apps()
    for method, request in _account_calls(world, app_id).items():
        reply = getattr(world.client.stub, method)(request, metadata=world.auth(secret))
        assert reply.status.code == MISSING, (method, reply.status)
        assert reply.status.details == "", (method, reply.status)  # as for a stranger
    assert world.alices_keys() == keys_before
    assert world.alices_apps() == apps_before
    # The grant itself still works on its app.
    ok(
        world.client.stub.GetApp(
            S.GetAppRequest(user_app_id=R.UserAppIDSet(user_id=world.alice, app_id=app_id)),
            metadata=world.auth(secret),
        )
    )


def test_the_issues_rest_request_mints_nothing(server, world: World):
    body = {
        "user_app_id": {"app_id": world.other_app},
        "keys": [{"description": "x", "scopes": ["All"]}],
    }
    reply = requests.post(
        f"{server.http_url}/v2/users/{world.alice}/keys",
        data=json.dumps(body),
        headers={"authorization": f"Key {world.dave_pat}", "content-type": "application/json"},
        timeout=20,
    )
    assert reply.status_code == 404, reply.text
    assert reply.json()["status"]["code"] == MISSING
    assert "keys" not in reply.json() or not reply.json()["keys"]


def test_patch_apps_cannot_reach_an_app_the_body_names(world: World):
    """Dave, collaborator on other-app only, names secret-app in the body."""
    request = S.PatchAppsRequest(
        user_app_id=R.UserAppIDSet(user_id=world.alice, app_id=world.other_app),
        apps=[R.App(id=world.secret_app, visibility=R.Visibility(gettable=R.Visibility.PUBLIC))],
    )
    reply = world.client.stub.PatchApps(request, metadata=world.auth(world.dave_pat))
    assert reply.status.code == MISSING, reply.status
    assert world.alices_apps()[world.secret_app] == R.Visibility.PRIVATE


def test_a_public_app_shows_no_collaborators_to_strangers(world: World):
    ids = R.UserAppIDSet(user_id=world.alice, app_id=world.public_app)
    reply = world.client.stub.ListCollaborators(
        S.ListCollaboratorsRequest(user_app_id=ids), metadata=world.auth(world.stranger_pat)
    )
    assert reply.status.code == MISSING, reply.status
    assert not reply.collaborators
    # Public reads still work.
    ok(
        world.client.stub.GetApp(
            S.GetAppRequest(user_app_id=ids), metadata=world.auth(world.stranger_pat)
        )
    )


def test_an_org_role_that_creates_apps_patches_only_what_it_opens(server, world: World):
    """An org_contributor holds `Apps_Add` on the organization (it creates apps), but no
    role but admin holds it on an app: it may not patch one; the admin may."""
    stub, admin_pat = world.client.stub, world.alice_pat
    org_id = new_id("org")
    call(server, "POST", ORGS, admin_pat, {"id": org_id})
    call(
        server,
        "POST",
        f"{ORGS}/{org_id}/members",
        admin_pat,
        {"user_id": world.dave, "role": "org_contributor"},
    )
    app_id = new_id("orgapp")
    ok(
        stub.PostApps(
            S.PostAppsRequest(user_app_id=R.UserAppIDSet(user_id=org_id), apps=[R.App(id=app_id)]),
            metadata=world.auth(admin_pat),
        )
    )

    def patch(secret: str, named_in: str):
        ids = R.UserAppIDSet(user_id=org_id, app_id=app_id if named_in == "user_app_id" else "")
        body_app = R.App(id=app_id if named_in == "body" else "", description=f"by {named_in}")
        return stub.PatchApps(
            S.PatchAppsRequest(user_app_id=ids, action="merge", apps=[body_app]),
            metadata=world.auth(secret),
        )

    for named_in in ("body", "user_app_id"):
        refused = patch(world.dave_pat, named_in)
        assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES, (named_in, refused.status)
    got = ok(
        stub.GetApp(
            S.GetAppRequest(user_app_id=R.UserAppIDSet(user_id=org_id, app_id=app_id)),
            metadata=world.auth(admin_pat),
        )
    )
    assert got.app.description == ""
    ok(patch(admin_pat, "body"))
    # The contributor still creates apps: the organization's `Apps_Add` is intact.
    ok(
        stub.PostApps(
            S.PostAppsRequest(
                user_app_id=R.UserAppIDSet(user_id=org_id), apps=[R.App(id=new_id("mine"))]
            ),
            metadata=world.auth(world.dave_pat),
        )
    )
