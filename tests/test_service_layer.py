"""The service layer through the dispatcher, in process: each change audits itself once,
this process's caches drop what a committed change affects at once, and an app a request's
body names is authorized through the policy (an app key for another account's app only
for that organization's admins, never through a collaborator grant)."""

from __future__ import annotations

import asyncio

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from scopegate.contract.status import C
from scopegate.dispatch import Call
from scopegate.handlers.key_roll import AUTHORIZED_AS, ROLL
from scopegate.server import serve as server
from scopegate.store import audit
from tests.support.in_process import sign_up


def _call(dispatcher, method: str, secret: str, request):
    spec = dispatcher.services.catalog.method(method)
    call = Call(spec, request, f"Key {secret}", None, "127.0.0.1")
    response, _error = asyncio.run(dispatcher.dispatch(call))
    return response


def _ids(user_id: str = "me", app_id: str = "") -> resources_pb2.UserAppIDSet:
    return resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id)


def _actions(services, user_id: str) -> list[str]:
    with services.engine.connect() as conn:
        return [e.action for e in audit.search(conn, user_id, ascending=True)]


def _app_key(dispatcher, secret: str, owner: str, app_id: str):
    key = resources_pb2.Key(
        type="app_specific_key", scopes=["All"], apps=[resources_pb2.App(id=app_id, user_id=owner)]
    )
    return _call(
        dispatcher, "PostKeys", secret, service_pb2.PostKeysRequest(user_app_id=_ids(), keys=[key])
    )


def test_app_changes_are_audited_once_and_evicted_at_commit(services):
    owner = sign_up(services, "owner")
    dispatcher = server.build_dispatcher(services)
    made = _call(
        dispatcher,
        "PostApps",
        owner,
        service_pb2.PostAppsRequest(user_app_id=_ids(), apps=[resources_pb2.App(id="a1")]),
    )
    assert made.status.code == C.SUCCESS
    app_key = made.apps[0].metadata["default_api_key"]
    apps_of = service_pb2.ListAppsRequest(user_app_id=_ids())
    assert _call(dispatcher, "GetApp", app_key, service_pb2.GetAppRequest()).status.code == (
        C.SUCCESS
    )
    deleted = _call(
        dispatcher, "DeleteApp", owner, service_pb2.DeleteAppRequest(user_app_id=_ids("me", "a1"))
    )
    assert deleted.status.code == C.SUCCESS
    # The app's default key was cached by the call above: gone at once, not after a poll.
    refused = _call(dispatcher, "GetApp", app_key, service_pb2.GetAppRequest())
    assert refused.status.code == C.CONN_KEY_INVALID
    assert _call(dispatcher, "ListApps", owner, apps_of).status.code == C.SUCCESS
    actions = _actions(services, "owner")
    assert actions.count("app.create") == actions.count("app.delete") == 1
    assert actions[-3:] == ["key.create", "app.create", "app.delete"]


def test_a_rolled_secret_ends_at_once_and_the_roll_is_audited_once(services):
    owner = sign_up(services, "owner")
    dispatcher = server.build_dispatcher(services)
    made = _call(
        dispatcher,
        "PostKeys",
        owner,
        service_pb2.PostKeysRequest(user_app_id=_ids(), keys=[resources_pb2.Key(scopes=["All"])]),
    )
    old_secret = made.keys[0].id
    me = service_pb2.MyScopesRequest(user_app_id=_ids())
    assert _call(dispatcher, "MyScopes", old_secret, me).status.code == C.SUCCESS
    with services.engine.connect() as conn:
        public_id = audit.search(conn, "owner", actions=["key.create"])[0].target[len("key:") :]
    spec = services.catalog.method(AUTHORIZED_AS)
    call = Call(
        spec,
        service_pb2.PatchKeysRequest(user_app_id=_ids()),
        f"Key {owner}",
        None,
        "127.0.0.1",
        handler=ROLL,
        extras={"key_id": public_id, "grace_seconds": 0},
    )
    rolled, error = asyncio.run(dispatcher.dispatch(call))
    assert error is None
    assert _call(dispatcher, "MyScopes", old_secret, me).status.code == C.CONN_KEY_INVALID
    assert _call(dispatcher, "MyScopes", rolled.keys[0].id, me).status.code == C.SUCCESS
    assert _actions(services, "owner").count("key.roll") == 1


def test_a_collaborator_granted_all_cannot_make_a_key_for_the_app(services):
    owner, guest = sign_up(services, "owner"), sign_up(services, "guest")
    dispatcher = server.build_dispatcher(services)
    _call(
        dispatcher,
        "PostApps",
        owner,
        service_pb2.PostAppsRequest(user_app_id=_ids(), apps=[resources_pb2.App(id="shared")]),
    )
    granted = _call(
        dispatcher,
        "PostCollaborators",
        owner,
        service_pb2.PostCollaboratorsRequest(
            user_app_id=_ids("owner", "shared"),
            collaborators=[
                resources_pb2.Collaborator(user=resources_pb2.User(id="guest"), scopes=["All"])
            ],
        ),
    )
    assert granted.status.code == C.SUCCESS
    refused = _app_key(dispatcher, guest, "owner", "shared")
    assert refused.status.code == C.CONN_DOES_NOT_EXIST
    assert "among the apps you manage" in refused.status.details
    missing = _app_key(dispatcher, guest, "owner", "no-such-app")
    assert (missing.status.code, missing.status.details) == (
        refused.status.code,
        refused.status.details.replace("shared", "no-such-app"),
    )
    assert _app_key(dispatcher, owner, "owner", "shared").status.code == C.SUCCESS
