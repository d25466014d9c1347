"""Collaborators: a grant on someone else's app, intersected with the caller's PAT."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.contract.catalog import load_catalog
from tests.support.api import add_collaborator, me, ok
from tests.support.clients import Client, new_id


def test_grant_reaches_the_app_with_both_sides_scopes(server, client: Client, user):
    owner_id, owner_pat = user
    needed = sorted(load_catalog().methods["GetApp"].scopes)
    granted = [name.replace("_", ":") for name in needed]  # either spelling is accepted
    app_id, guest_id, guest_pat, added = add_collaborator(server, client, owner_pat, granted)
    assert added.app_owner.id == owner_id
    assert added.collaborators[0].user.id == guest_id
    target = me(user_id=owner_id, app_id=app_id)
    guest = client.auth(guest_pat)
    ok(client.stub.GetApp(service_pb2.GetAppRequest(user_app_id=target), metadata=guest))
    # Not granted: listed as missing, since the guest may see the app.
    refused = client.stub.PostInputs(
        service_pb2.PostInputsRequest(user_app_id=target), metadata=guest
    )
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert "Inputs_Add" in refused.status.details
    # A narrower PAT of the guest gets the intersection.
    narrow = (
        ok(
            client.stub.PostKeys(
                service_pb2.PostKeysRequest(
                    user_app_id=me(),
                    keys=[resources_pb2.Key(type="personal_access_token", scopes=["Inputs_Get"])],
                ),
                metadata=guest,
            )
        )
        .keys[0]
        .id
    )
    cut = client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=target), metadata=client.auth(narrow)
    )
    assert cut.status.code == codes.CONN_INSUFFICIENT_SCOPES
    collaborations = ok(
        client.stub.ListCollaborations(
            service_pb2.ListCollaborationsRequest(user_app_id=me()), metadata=guest
        )
    ).collaborations
    assert [(c.app.id, c.app_owner.id) for c in collaborations] == [(app_id, owner_id)]
    assert "Apps_Get" in collaborations[0].scopes


def test_narrowing_and_removing_take_effect_at_once(server, client: Client, user):
    owner_id, owner_pat = user
    app_id, guest_id, guest_pat, _ = add_collaborator(server, client, owner_pat, ["All"])
    target = me(user_id=owner_id, app_id=app_id)
    guest = client.auth(guest_pat)
    ok(client.stub.GetApp(service_pb2.GetAppRequest(user_app_id=target), metadata=guest))
    ok(
        client.stub.PatchCollaborators(
            service_pb2.PatchCollaboratorsRequest(
                user_app_id=me(app_id=app_id),
                action="overwrite",
                collaborators=[
                    resources_pb2.Collaborator(
                        user=resources_pb2.User(id=guest_id), scopes=["Inputs_Get"]
                    )
                ],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    narrowed = client.stub.GetApp(service_pb2.GetAppRequest(user_app_id=target), metadata=guest)
    assert narrowed.status.code == codes.CONN_INSUFFICIENT_SCOPES
    listed = ok(
        client.stub.ListCollaborators(
            service_pb2.ListCollaboratorsRequest(user_app_id=me(app_id=app_id)),
            metadata=client.auth(owner_pat),
        )
    )
    assert [c.user.id for c in listed.collaborators] == [guest_id]
    ok(
        client.stub.DeleteCollaborators(
            service_pb2.DeleteCollaboratorsRequest(
                user_app_id=me(app_id=app_id), user_emails=[f"{guest_id}@example.com"]
            ),
            metadata=client.auth(owner_pat),
        )
    )
    gone = client.stub.ListInputs(service_pb2.ListInputsRequest(user_app_id=target), metadata=guest)
    assert gone.status.code == codes.CONN_DOES_NOT_EXIST


def test_bad_collaborator_requests(server, client: Client, user):
    owner_id, owner_pat = user
    app_id = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[resources_pb2.App(id=app_id)]),
            metadata=client.auth(owner_pat),
        )
    )
    auth = client.auth(owner_pat)
    for collaborator, code in (
        (
            resources_pb2.Collaborator(user=resources_pb2.User(id=new_id()), scopes=["All"]),
            codes.CONN_DOES_NOT_EXIST,
        ),
        (
            resources_pb2.Collaborator(user=resources_pb2.User(id=owner_id), scopes=["All"]),
            codes.CONN_INVALID_REQUEST,
        ),
        (
            resources_pb2.Collaborator(user=resources_pb2.User(id=owner_id), scopes=["Nope"]),
            codes.CONN_INVALID_REQUEST,
        ),
    ):
        response = client.stub.PostCollaborators(
            service_pb2.PostCollaboratorsRequest(
                user_app_id=me(app_id=app_id), collaborators=[collaborator]
            ),
            metadata=auth,
        )
        assert response.status.code == code, response.status
