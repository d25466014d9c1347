"""Fine-grained PATs (issue 14, part 1): a PAT limited to named apps and organizations
answers outside them exactly as a stranger's PAT does (11101), on both transports and both
databases; limits are set by PostKeys/PatchKeys (`apps`) and GET|PUT .../resources, shown
in answers, and narrowing takes effect at once. Expectations from the README's rules
("Fine-grained tokens")."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import ORGS, add_collaborator, call, me, ok, rest
from tests.support.clients import Client, new_id

R = resources_pb2


def _app(client: Client, pat: str, owner: str = "me") -> str:
    app_id = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(user_id=owner), apps=[R.App(id=app_id)]),
            metadata=client.auth(pat),
        )
    )
    return app_id


def _limited_pat(client: Client, pat: str, apps: list[R.App]) -> service_pb2.MultiKeyResponse:
    key = R.Key(type="personal_access_token", description="fine", scopes=["All"], apps=apps)
    return client.stub.PostKeys(
        service_pb2.PostKeysRequest(user_app_id=me(), keys=[key]), metadata=client.auth(pat)
    )


def _get_app(client: Client, pat: str, owner: str, app_id: str):
    return client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=owner, app_id=app_id)),
        metadata=client.auth(pat),
    )


def _refusal(response) -> tuple[int, str, str]:
    return response.status.code, response.status.description, response.status.details


def _within_bound(read, wanted, bound: float = 1.0) -> bool:
    """Whether `read()` answers `wanted` within `bound` seconds (the revocation bound)."""
    import time

    deadline = time.monotonic() + bound
    while read() != wanted:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _resources_path(key_id: str, user: str = "me") -> str:
    return f"/scopegate/v1/users/{user}/keys/{key_id}/resources"


def _newest_key_id(client, pat: str) -> str:
    """The public id of the newest key of the PAT's user (ListKeys lists newest first)."""
    listed = client.stub.ListKeys(
        service_pb2.ListKeysRequest(user_app_id=me()), metadata=client.auth(pat)
    )
    return ok(listed).keys[0].id


def test_limited_pat_reaches_its_apps_only_and_answers_as_a_stranger(server, client: Client, user):
    owner, owner_pat = user
    mine, other = _app(client, owner_pat), _app(client, owner_pat)
    created = ok(_limited_pat(client, owner_pat, [R.App(id=mine)]))
    secret = created.keys[0].id
    assert [(a.user_id, a.id) for a in created.keys[0].apps] == [(owner, mine)]

    ok(_get_app(client, secret, owner, mine))
    ok(_get_app(client, secret, "me", mine))
    ok(
        client.stub.ListConcepts(
            service_pb2.ListConceptsRequest(user_app_id=me(app_id=mine)),
            metadata=client.auth(secret),
        )
    )
    stranger = server.create_user(new_id())
    as_stranger = _refusal(_get_app(client, stranger, owner, other))
    assert as_stranger[0] == codes.CONN_DOES_NOT_EXIST
    # Another app of its own owner, and an app that does not exist: the stranger's answer.
    assert _refusal(_get_app(client, secret, owner, other)) == as_stranger
    assert _refusal(_get_app(client, secret, owner, new_id("nope"))) == as_stranger
    # Its user's account is outside it: no list of apps, no new key, not even naming an
    # app it holds (account-level methods are judged on the account).
    listed = client.stub.ListApps(
        service_pb2.ListAppsRequest(user_app_id=me()), metadata=client.auth(secret)
    )
    assert listed.status.code == codes.CONN_DOES_NOT_EXIST
    for ids in (me(), me(app_id=mine)):
        minted = client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=ids, keys=[R.Key(type="personal_access_token", scopes=["All"])]
            ),
            metadata=client.auth(secret),
        )
        assert minted.status.code == codes.CONN_DOES_NOT_EXIST
        keys = client.stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=ids), metadata=client.auth(secret)
        )
        assert keys.status.code == codes.CONN_DOES_NOT_EXIST
    # The owner's unlimited PAT keeps today's behaviour.
    ok(_get_app(client, owner_pat, owner, other))


def test_limits_are_shown_set_and_narrowed_at_once(server, client: Client, user):
    owner, owner_pat = user
    first, second = _app(client, owner_pat), _app(client, owner_pat)
    created = ok(
        client.stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=me(), keys=[R.Key(type="personal_access_token", scopes=["All"])]
            ),
            metadata=client.auth(owner_pat),
        )
    )
    secret = created.keys[0].id
    assert list(created.keys[0].apps) == []
    public_id = _newest_key_id(client, owner_pat)
    status, body = rest(server, "GET", _resources_path(public_id), owner_pat)
    assert status == 200 and body["resources"] is None, body

    ok(_get_app(client, secret, owner, second))  # unlimited: both apps
    # PatchKeys naming apps limits the token; the decision made a moment ago is not reused.
    patched = ok(
        client.stub.PatchKeys(
            service_pb2.PatchKeysRequest(
                user_app_id=me(),
                action="overwrite",
                keys=[R.Key(id=public_id, scopes=["All"], apps=[R.App(id=first)])],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    assert [a.id for a in patched.keys[0].apps] == [first]
    assert _get_app(client, secret, owner, second).status.code == codes.CONN_DOES_NOT_EXIST
    ok(_get_app(client, secret, owner, first))
    # A patch naming no apps keeps the limits: widening is never an omission.
    ok(
        client.stub.PatchKeys(
            service_pb2.PatchKeysRequest(
                user_app_id=me(),
                action="overwrite",
                keys=[R.Key(id=public_id, description="kept", scopes=["All"])],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    assert _get_app(client, secret, owner, second).status.code == codes.CONN_DOES_NOT_EXIST
    listed = call(server, "GET", "/v2/users/me/keys", owner_pat)
    shown = next(k for k in listed["keys"] if k["id"] == public_id)
    assert shown["resources"] == {"apps": [f"{owner}/{first}"], "orgs": []}
    # PUT .../resources narrows to the other app, then lifts the limits.
    body = call(server, "PUT", _resources_path(public_id), owner_pat, {"apps": [f"me/{second}"]})
    assert body["resources"] == {"apps": [f"{owner}/{second}"], "orgs": []}
    assert _get_app(client, secret, owner, first).status.code == codes.CONN_DOES_NOT_EXIST
    ok(_get_app(client, secret, owner, second))
    body = call(server, "PUT", _resources_path(public_id), owner_pat, {"all_resources": True})
    assert body["resources"] is None
    ok(_get_app(client, secret, owner, first))
    audit = ok(
        client.stub.PostAuditLogSearches(
            service_pb2.PostAuditLogSearchesRequest(user_app_id=me()),
            metadata=client.auth(owner_pat),
        )
    )
    assert any("key.resources" in e.description for e in audit.entries)


def test_organization_limit_opens_the_organization_and_nothing_else(server, client: Client, user):
    _owner, owner_pat = user
    org_id = new_id("org")
    call(server, "POST", ORGS, owner_pat, {"id": org_id})
    org_app, own_app = _app(client, owner_pat, org_id), _app(client, owner_pat)
    created = ok(_limited_pat(client, owner_pat, [R.App(user_id=org_id, id="*")]))
    secret = created.keys[0].id
    ok(_get_app(client, secret, org_id, org_app))
    call(server, "GET", f"{ORGS}/{org_id}", secret)  # the organization's account too
    assert _get_app(client, secret, "me", own_app).status.code == codes.CONN_DOES_NOT_EXIST
    body = call(server, "GET", "/v2/users/me/keys", owner_pat)
    shown = [k for k in body["keys"] if k["resources"]]
    assert shown[0]["resources"] == {"apps": [], "orgs": [org_id]}


def test_only_ones_own_and_ones_organizations_resources_can_be_named(server, client: Client, user):
    owner, owner_pat = user
    # A collaborator granted All on another app of the owner cannot name the owner's app.
    shared, _guest, guest_pat, _ = add_collaborator(server, client, owner_pat, ["All"])
    unknown = new_id("app")
    answers = []
    for named in (R.App(user_id=owner, id=shared), R.App(user_id=owner, id=unknown)):
        refused = _limited_pat(client, guest_pat, [named])
        assert refused.status.code == codes.CONN_INVALID_REQUEST
        answers.append(refused.status.details.replace(shared, "X").replace(unknown, "X"))
    assert answers[0] == answers[1]  # whether the app exists does not show
    not_member = _limited_pat(client, guest_pat, [R.App(user_id=owner, id="*")])
    assert not_member.status.code == codes.CONN_INVALID_REQUEST
    # A body naming another user's app on PUT .../resources: refused alike.
    guest_key = _newest_key_id(client, guest_pat)
    status, body = rest(
        server, "PUT", _resources_path(guest_key), guest_pat, {"apps": [f"{owner}/{shared}"]}
    )
    assert status == 400 and body["status"]["code"] == codes.CONN_INVALID_REQUEST
    # A stranger, the collaborator, and an app key of the owner cannot read or change the
    # owner's key's resources.
    owner_key = (
        ok(
            client.stub.ListKeys(
                service_pb2.ListKeysRequest(user_app_id=me()), metadata=client.auth(owner_pat)
            )
        )
        .keys[0]
        .id
    )
    app_with_key = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[R.App(id=new_id("app"))]),
            metadata=client.auth(owner_pat),
        )
    )
    app_key = app_with_key.apps[0].metadata["default_api_key"]
    stranger = server.create_user(new_id())
    for secret in (stranger, guest_pat):
        for verb, body in (("GET", None), ("PUT", {"all_resources": True})):
            status, reply = rest(server, verb, _resources_path(owner_key, owner), secret, body)
            assert reply["status"]["code"] == codes.CONN_DOES_NOT_EXIST, reply
    status, reply = rest(server, "PUT", _resources_path(owner_key, owner), app_key, {"orgs": []})
    assert reply["status"]["code"] == codes.CONN_INSUFFICIENT_SCOPES, reply
    # Bad bodies: a status a person can act on.
    for bad in ({"apps": "x"}, {"all_resources": "yes"}, {"nope": 1}, {"apps": []}):
        status, reply = rest(server, "PUT", _resources_path(owner_key), owner_pat, bad)
        assert status == 400 and reply["status"]["details"], reply
    # An app-specific key cannot be limited: it reaches one app already.
    status, reply = rest(server, "PUT", _resources_path(owner_key), owner_pat, {"apps": ["x/y"]})
    assert reply["status"]["code"] == codes.CONN_INVALID_REQUEST


def test_cli_creates_patches_and_lists_fine_grained_pats(server, user):
    import json

    from tests.support.clients import make_stub

    owner, owner_pat = user
    client = Client("grpc", make_stub(server, "grpc"))
    first, second = _app(client, owner_pat), _app(client, owner_pat)

    def run(*args: str):
        result = server.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    made = run("keys", "create", "--user", owner, "--only-app", f"{owner}/{first}")
    assert made["resources"] == {"apps": [f"{owner}/{first}"], "orgs": []}
    secret = made["secret"]
    ok(_get_app(client, secret, owner, first))
    assert _get_app(client, secret, owner, second).status.code == codes.CONN_DOES_NOT_EXIST
    patched = run("keys", "patch", made["id"], "--user", owner, "--all-resources")
    assert patched["resources"] is None
    # The running server drops the old limits within the revocation bound (change log poll).
    assert _within_bound(lambda: _get_app(client, secret, owner, second).status.code, 10000)
    run("keys", "patch", made["id"], "--user", owner, "--only-app", f"me/{second}")
    assert _within_bound(
        lambda: _get_app(client, secret, owner, first).status.code, codes.CONN_DOES_NOT_EXIST
    )
    listed = run("keys", "list", "--user", owner)
    shown = next(k for k in listed["keys"] if k["id"] == made["id"])
    assert shown["resources"] == {"apps": [f"{owner}/{second}"], "orgs": []}
    text = server.cli("keys", "list", "--user", owner)
    assert f"only {owner}/{second}" in text.stdout.replace("\n", "")
    # Another user's app, and conflicting options: one error line each.
    stranger = new_id()
    server.create_user(stranger)
    refused = server.cli("keys", "create", "--user", stranger, "--only-app", f"{owner}/{first}")
    assert refused.returncode == 1 and "not among your apps" in refused.stderr
    both = server.cli(
        "keys", "patch", made["id"], "--user", owner, "--all-resources", "--only-org", "x"
    )
    assert both.returncode == 2
