"""Organizations and teams: roles reach org apps through the intersection of the role's
scopes and the PAT, teams open chosen apps, ORG visibility opens reads to members, and
leaving ends access at once."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import ORGS, call, me, ok, rest
from tests.support.clients import Client, new_id


def _org_with_app(server, client: Client, admin_pat: str, visibility=None):
    org_id, app_id = new_id("org"), new_id("app")
    call(server, "POST", ORGS, admin_pat, {"id": org_id, "name": "Acme"})
    app = resources_pb2.App(id=app_id)
    if visibility:
        app.visibility.gettable = visibility
    created = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(user_id=org_id), apps=[app]),
            metadata=client.auth(admin_pat),
        )
    )
    return org_id, app_id, created.apps[0].metadata["default_api_key"]


def _member(server, org_id: str, admin_pat: str, role: str) -> tuple[str, str]:
    user_id = new_id()
    pat = server.create_user(user_id)
    call(server, "POST", f"{ORGS}/{org_id}/members", admin_pat, {"user_id": user_id, "role": role})
    return user_id, pat


def _get_app(client: Client, pat: str, org_id: str, app_id: str):
    return client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=org_id, app_id=app_id)),
        metadata=client.auth(pat),
    )


def _post_concepts(client: Client, pat: str, org_id: str, app_id: str):
    return client.stub.PostConcepts(
        service_pb2.PostConceptsRequest(
            user_app_id=me(user_id=org_id, app_id=app_id),
            concepts=[resources_pb2.Concept(id=new_id("c"))],
        ),
        metadata=client.auth(pat),
    )


def _allowed(response) -> bool:
    """Past authorization: success, or a handler's own answer (e.g. not implemented)."""
    return response.status.code not in (
        codes.CONN_DOES_NOT_EXIST,
        codes.CONN_INSUFFICIENT_SCOPES,
        codes.CONN_KEY_INVALID,
    )


def test_org_roles_reach_org_apps_with_their_scopes(server, client: Client, user):
    _admin_id, admin_pat = user
    org_id, app_id, app_key = _org_with_app(server, client, admin_pat)
    _, contributor = _member(server, org_id, admin_pat, "org_contributor")
    _, reader = _member(server, org_id, admin_pat, "org_user")
    _, finance = _member(server, org_id, admin_pat, "financial_manager")
    stranger = server.create_user(new_id())

    for pat in (admin_pat, contributor, reader):
        ok(_get_app(client, pat, org_id, app_id))
    assert _allowed(_post_concepts(client, contributor, org_id, app_id))
    refused = _post_concepts(client, reader, org_id, app_id)
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert "Concepts_Add" in refused.status.details
    # No app access for the financial manager, and a stranger: both as if it did not exist.
    missing = _get_app(client, stranger, org_id, new_id("nope"))
    for pat in (finance, stranger):
        hidden = _get_app(client, pat, org_id, app_id)
        assert hidden.status.code == codes.CONN_DOES_NOT_EXIST
        assert hidden.status.description == missing.status.description
        assert hidden.status.details == missing.status.details
    # Only admins delete apps; the org's default app key works on its app.
    refused = client.stub.DeleteApp(
        service_pb2.DeleteAppRequest(user_app_id=me(user_id=org_id, app_id=app_id)),
        metadata=client.auth(contributor),
    )
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    ok(client.stub.GetApp(service_pb2.GetAppRequest(), metadata=client.auth(app_key)))


def test_member_pat_is_intersected_with_the_role(server, client: Client, user):
    _, admin_pat = user
    org_id, app_id, _ = _org_with_app(server, client, admin_pat)
    _member_id, member_pat = _member(server, org_id, admin_pat, "org_contributor")
    narrow = (
        ok(
            client.stub.PostKeys(
                service_pb2.PostKeysRequest(
                    user_app_id=me(),
                    keys=[resources_pb2.Key(type="personal_access_token", scopes=["Concepts_Get"])],
                ),
                metadata=client.auth(member_pat),
            )
        )
        .keys[0]
        .id
    )
    refused = _get_app(client, narrow, org_id, app_id)
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert "Apps_Get" in refused.status.details


def test_teams_open_chosen_apps_and_org_visibility_opens_reads(server, client: Client, user):
    _, admin_pat = user
    org_id, team_app, _ = _org_with_app(server, client, admin_pat)
    other_app = new_id("app")
    org_visible = new_id("app")
    for app_id, visibility in ((other_app, 0), (org_visible, resources_pb2.Visibility.ORG)):
        app = resources_pb2.App(id=app_id)
        if visibility:
            app.visibility.gettable = visibility
        ok(
            client.stub.PostApps(
                service_pb2.PostAppsRequest(user_app_id=me(user_id=org_id), apps=[app]),
                metadata=client.auth(admin_pat),
            )
        )
    member_id, member_pat = _member(server, org_id, admin_pat, "team_contributor")
    # Before any team: only the ORG-visible app, read-only.
    assert _get_app(client, member_pat, org_id, team_app).status.code == codes.CONN_DOES_NOT_EXIST
    ok(_get_app(client, member_pat, org_id, org_visible))
    refused = _post_concepts(client, member_pat, org_id, org_visible)
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES

    team = call(
        server,
        "POST",
        f"{ORGS}/{org_id}/teams",
        admin_pat,
        {"id": "vision", "role": "contributor", "app_ids": [team_app], "user_ids": [member_id]},
    )["team"]
    assert team == {
        "id": "vision",
        "name": "vision",
        "role": "contributor",
        "app_ids": [team_app],
        "user_ids": [member_id],
    }
    ok(_get_app(client, member_pat, org_id, team_app))
    assert _allowed(_post_concepts(client, member_pat, org_id, team_app))
    assert _get_app(client, member_pat, org_id, other_app).status.code == codes.CONN_DOES_NOT_EXIST
    listed = ok(
        client.stub.ListApps(
            service_pb2.ListAppsRequest(user_app_id=me(user_id=org_id)),
            metadata=client.auth(member_pat),
        )
    )
    assert sorted(a.id for a in listed.apps) == sorted([team_app, org_visible])

    # A read-only team role: reads stay, writes go, at once.
    call(server, "PATCH", f"{ORGS}/{org_id}/teams/vision", admin_pat, {"role": "user"})
    ok(_get_app(client, member_pat, org_id, team_app))
    refused = _post_concepts(client, member_pat, org_id, team_app)
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    call(server, "DELETE", f"{ORGS}/{org_id}/teams/vision", admin_pat)
    assert _get_app(client, member_pat, org_id, team_app).status.code == codes.CONN_DOES_NOT_EXIST


def test_leaving_ends_access_at_once(server, client: Client, user):
    _, admin_pat = user
    org_id, app_id, _ = _org_with_app(server, client, admin_pat)
    member_id, member_pat = _member(server, org_id, admin_pat, "org_user")
    ok(_get_app(client, member_pat, org_id, app_id))  # cached now
    call(server, "DELETE", f"{ORGS}/{org_id}/members/me", member_pat)
    assert _get_app(client, member_pat, org_id, app_id).status.code == codes.CONN_DOES_NOT_EXIST
    # Removed by an admin, likewise.
    member_id, member_pat = _member(server, org_id, admin_pat, "admin")
    ok(_get_app(client, member_pat, org_id, app_id))
    call(server, "DELETE", f"{ORGS}/{org_id}/members/{member_id}", admin_pat)
    assert _get_app(client, member_pat, org_id, app_id).status.code == codes.CONN_DOES_NOT_EXIST


def test_an_app_asked_for_before_it_exists_is_reachable_once_made(server, client: Client, user):
    _, admin_pat = user
    org_id, _, _ = _org_with_app(server, client, admin_pat)
    app_id = new_id("app")
    _, reader = _member(server, org_id, admin_pat, "org_user")
    for pat in (admin_pat, reader):  # both misses are cached
        assert _get_app(client, pat, org_id, app_id).status.code == codes.CONN_DOES_NOT_EXIST
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(
                user_app_id=me(user_id=org_id), apps=[resources_pb2.App(id=app_id)]
            ),
            metadata=client.auth(admin_pat),
        )
    )
    for pat in (admin_pat, reader):
        ok(_get_app(client, pat, org_id, app_id))


def test_an_organization_asked_for_before_it_exists_is_reachable_once_made(server, user):
    _, admin_pat = user
    org_id = new_id("org")
    status, reply = rest(server, "GET", f"/v2/users/{org_id}/apps", admin_pat)  # a cached miss
    assert (status, reply["status"]["code"]) == (404, codes.CONN_DOES_NOT_EXIST)
    call(server, "POST", ORGS, admin_pat, {"id": org_id})
    assert call(server, "GET", f"/v2/users/{org_id}/apps", admin_pat)["apps"] == []


def test_role_change_takes_effect_at_once(server, client: Client, user):
    _, admin_pat = user
    org_id, app_id, _ = _org_with_app(server, client, admin_pat)
    member_id, member_pat = _member(server, org_id, admin_pat, "org_contributor")
    assert _allowed(_post_concepts(client, member_pat, org_id, app_id))
    call(server, "PATCH", f"{ORGS}/{org_id}/members/{member_id}", admin_pat, {"role": "org_user"})
    refused = _post_concepts(client, member_pat, org_id, app_id)
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES


def test_sdk_route_lists_my_organizations(server, user):
    admin_id, admin_pat = user
    org_id = new_id("org")
    call(server, "POST", ORGS, admin_pat, {"id": org_id, "name": "Acme Research"})
    listed = call(server, "GET", f"/v2/users/{admin_id}/organizations", admin_pat)
    assert [(o["id"], o["name"], o["role"]["id"]) for o in listed["organizations"]] == [
        (org_id, "Acme Research", "admin")
    ]
    mine = call(server, "GET", "/v2/users/me/organizations", admin_pat)
    assert mine["organizations"] == listed["organizations"]
    stranger = server.create_user(new_id())
    _status, reply = rest(server, "GET", f"/v2/users/{admin_id}/organizations", stranger)
    assert reply["status"]["code"] == codes.CONN_DOES_NOT_EXIST
    assert call(server, "GET", "/v2/users/me/organizations", stranger)["organizations"] == []


def test_management_is_for_admins_and_outsiders_learn_nothing(server, user):
    _, admin_pat = user
    org_id = new_id("org")
    call(server, "POST", ORGS, admin_pat, {"id": org_id})
    member_id = new_id()
    member_pat = server.create_user(member_id)
    call(
        server,
        "POST",
        f"{ORGS}/{org_id}/members",
        admin_pat,
        {"email": f"{member_id}@example.com", "role": "org_user"},
    )
    shown = call(server, "GET", f"{ORGS}/{org_id}", member_pat)
    assert {m["user_id"]: m["role"] for m in shown["members"]}[member_id] == "org_user"

    status, reply = rest(
        server, "POST", f"{ORGS}/{org_id}/members", member_pat, {"user_id": "x", "role": "admin"}
    )
    assert reply["status"]["code"] == codes.CONN_INSUFFICIENT_SCOPES

    stranger = server.create_user(new_id())
    for path in (f"{ORGS}/{org_id}", f"{ORGS}/{new_id('org')}"):
        status, reply = rest(server, "GET", path, stranger)
        assert (status, reply["status"]["code"]) == (404, codes.CONN_DOES_NOT_EXIST)
        assert reply["status"].get("details", "") == ""

    status, reply = rest(
        server,
        "POST",
        f"{ORGS}/{org_id}/members",
        admin_pat,
        {"user_id": member_id, "role": "boss"},
    )
    assert reply["status"]["code"] == codes.CONN_INVALID_REQUEST
    assert "org_contributor" in reply["status"]["details"]  # the valid roles are listed
    # The last admin cannot leave.
    status, reply = rest(server, "DELETE", f"{ORGS}/{org_id}/members/me", admin_pat)
    assert reply["status"]["code"] == codes.CONN_INVALID_REQUEST
    assert "last admin" in reply["status"]["details"]


def test_organizations_have_no_pats_but_admins_make_their_app_keys(server, client: Client, user):
    _, admin_pat = user
    org_id, app_id, _ = _org_with_app(server, client, admin_pat)
    refused = client.stub.PostKeys(
        service_pb2.PostKeysRequest(
            user_app_id=me(user_id=org_id),
            keys=[resources_pb2.Key(type="personal_access_token", scopes=["All"])],
        ),
        metadata=client.auth(admin_pat),
    )
    assert refused.status.code == codes.CONN_INVALID_REQUEST
    made = ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=me(),
                keys=[
                    resources_pb2.Key(
                        type="app_specific_key",
                        scopes=["Apps_Get", "Workflows_Get"],
                        apps=[resources_pb2.App(id=app_id, user_id=org_id)],
                    )
                ],
            ),
            metadata=client.auth(admin_pat),
        )
    )
    ok(client.stub.GetApp(service_pb2.GetAppRequest(), metadata=client.auth(made.keys[0].id)))
    _, contributor = _member(server, org_id, admin_pat, "org_contributor")
    refused = client.stub.PostKeys(
        service_pb2.PostKeysRequest(
            user_app_id=me(),
            keys=[
                resources_pb2.Key(
                    type="app_specific_key",
                    scopes=["Apps_Get", "Workflows_Get"],
                    apps=[resources_pb2.App(id=app_id, user_id=org_id)],
                )
            ],
        ),
        metadata=client.auth(contributor),
    )
    assert refused.status.code == codes.CONN_DOES_NOT_EXIST


def test_app_keys_cannot_manage_organizations(server, client: Client, user):
    _, admin_pat = user
    _, _, app_key = _org_with_app(server, client, admin_pat)
    _status, reply = rest(server, "POST", ORGS, app_key, {"id": new_id("org")})
    assert reply["status"]["code"] == codes.CONN_INSUFFICIENT_SCOPES
