"""The foundation's end-to-end flow with the official client, on both transports and
both databases: user → PAT → app → API key → a call with the API key."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from tests.support.api import ok
from tests.support.clients import Client, new_id


def test_pat_creates_app_and_key_then_key_calls(client: Client, user):
    user_id, pat = user
    stub, auth = client.stub, client.auth(pat)

    me = ok(
        stub.GetUser(
            service_pb2.GetUserRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me")),
            metadata=auth,
        )
    )
    assert me.user.id == user_id
    same = ok(
        stub.GetUser(
            service_pb2.GetUserRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=user_id)),
            metadata=auth,
        )
    )
    assert same.user.id == user_id

    app_id = new_id("app")
    created = ok(
        stub.PostApps(
            service_pb2.PostAppsRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
                apps=[resources_pb2.App(id=app_id, description="demo")],
            ),
            metadata=auth,
        )
    )
    assert created.apps[0].id == app_id
    assert created.apps[0].user_id == user_id
    default_key = created.apps[0].metadata["default_api_key"]
    assert default_key.startswith("sgk_")
    assert (
        ok(stub.GetApp(service_pb2.GetAppRequest(), metadata=client.auth(default_key))).app.id
        == app_id
    )

    listed = ok(
        stub.ListApps(
            service_pb2.ListAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me")),
            metadata=auth,
        )
    )
    assert [a.id for a in listed.apps] == [app_id]
    got = ok(
        stub.GetApp(
            service_pb2.GetAppRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id)
            ),
            metadata=auth,
        )
    )
    assert got.app.description == "demo"

    # Creating an app created its default API key, listed without its secret.
    keys = ok(
        stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me")),
            metadata=auth,
        )
    ).keys
    kinds = sorted(k.type for k in keys)
    assert kinds == ["app_specific_key", "personal_access_token"]
    assert all(pat not in k.id for k in keys)

    made = ok(
        stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
                keys=[
                    resources_pb2.Key(
                        description="ci key",
                        type="app_specific_key",
                        scopes=["All"],
                        apps=[resources_pb2.App(id=app_id)],
                    )
                ],
            ),
            metadata=auth,
        )
    )
    api_key = made.keys[0].id
    assert api_key.startswith("sgk_")

    # The API key names neither user nor app.
    scopes = ok(stub.MyScopes(service_pb2.MyScopesRequest(), metadata=client.auth(api_key)))
    assert scopes.app.id == app_id
    assert "All" in scopes.scopes
    own = ok(stub.GetApp(service_pb2.GetAppRequest(), metadata=client.auth(api_key)))
    assert own.app.id == app_id
    # ... and may name its own app explicitly.
    ok(
        stub.GetApp(
            service_pb2.GetAppRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id)
            ),
            metadata=client.auth(api_key),
        )
    )


def test_key_listing_never_shows_secrets(client: Client, user, server):
    _user_id, pat = user
    stub, auth = client.stub, client.auth(pat)
    made = ok(
        stub.PostKeys(
            service_pb2.PostKeysRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
                keys=[
                    resources_pb2.Key(
                        description="second", type="personal_access_token", scopes=["Apps_Get"]
                    )
                ],
            ),
            metadata=auth,
        )
    )
    secret = made.keys[0].id
    assert secret.startswith("sgp_")
    listed = ok(
        stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me")),
            metadata=auth,
        )
    )
    ids = {k.id for k in listed.keys}
    assert secret not in ids and pat not in ids
    assert len(ids) == 2
