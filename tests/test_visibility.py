"""PUBLIC apps: any PAT may read and predict, nobody else may write; PRIVATE apps look
missing to strangers. Which methods count as reads comes from the catalog."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.auth.policy import is_public_read
from scopegate.contract.catalog import load_catalog
from tests.support.api import me, ok
from tests.support.clients import Client, new_id

PUBLIC = resources_pb2.Visibility.PUBLIC
PRIVATE = resources_pb2.Visibility.PRIVATE


def test_public_reads_are_derived_from_the_catalog():
    methods = load_catalog().methods
    assert is_public_read(methods["GetApp"])
    assert is_public_read(methods["PostModelOutputs"])
    assert is_public_read(methods["ListInputs"])
    for write in ("PostInputs", "DeleteApp", "PatchApps", "PostModels", "PatchModelToolkits"):
        assert not is_public_read(methods[write]), write
    for account_level in ("ListKeys", "GetKey", "ListSecrets", "PostAuditLogSearches"):
        assert not is_public_read(methods[account_level]), account_level


def test_stranger_reads_public_app_but_cannot_write(server, client: Client, user):
    owner_id, owner_pat = user
    stranger_pat = server.create_user(new_id())
    app_id = new_id("app")
    created = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(
                user_app_id=me(),
                apps=[
                    resources_pb2.App(
                        id=app_id, visibility=resources_pb2.Visibility(gettable=PUBLIC)
                    )
                ],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    stranger_key = created.apps[0].metadata["default_api_key"]  # owner's key: not stranger's
    target = me(user_id=owner_id, app_id=app_id)
    stranger = client.auth(stranger_pat)

    got = ok(client.stub.GetApp(service_pb2.GetAppRequest(user_app_id=target), metadata=stranger))
    assert got.app.visibility.gettable == PUBLIC
    predicted = client.stub.PostModelOutputs(
        service_pb2.PostModelOutputsRequest(user_app_id=target, model_id="m"), metadata=stranger
    )
    # Authorized (a public read), then answered by the handler: the app has no such model.
    assert predicted.status.code == codes.CONN_DOES_NOT_EXIST, predicted.status
    assert "No model 'm'" in predicted.status.details
    # Writing the app's data: the app is visible, the scopes are not there. Changing or
    # deleting the app administers its owner's account, which the stranger cannot see.
    for call, request, code in (
        (
            client.stub.PatchApps,
            service_pb2.PatchAppsRequest(
                user_app_id=target, apps=[resources_pb2.App(id=app_id, description="mine")]
            ),
            codes.CONN_DOES_NOT_EXIST,
        ),
        (
            client.stub.DeleteApp,
            service_pb2.DeleteAppRequest(user_app_id=target),
            codes.CONN_DOES_NOT_EXIST,
        ),
        (
            client.stub.PostInputs,
            service_pb2.PostInputsRequest(user_app_id=target),
            codes.CONN_INSUFFICIENT_SCOPES,
        ),
    ):
        refused = call(request, metadata=stranger)
        assert refused.status.code == code, refused.status
    assert stranger_key.startswith("sgk_")

    # Made private again, it looks missing to the stranger at once.
    ok(
        client.stub.PatchApps(
            service_pb2.PatchAppsRequest(
                user_app_id=me(),
                action="merge",
                apps=[
                    resources_pb2.App(
                        id=app_id, visibility=resources_pb2.Visibility(gettable=PRIVATE)
                    )
                ],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    hidden = client.stub.GetApp(service_pb2.GetAppRequest(user_app_id=target), metadata=stranger)
    assert hidden.status.code == codes.CONN_DOES_NOT_EXIST


def test_api_key_never_reaches_a_public_app_of_another(server, client: Client, user):
    owner_id, owner_pat = user
    app_id = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(
                user_app_id=me(),
                apps=[
                    resources_pb2.App(
                        id=app_id, visibility=resources_pb2.Visibility(gettable=PUBLIC)
                    )
                ],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    stranger_pat = server.create_user(new_id())
    own = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(
                user_app_id=me(), apps=[resources_pb2.App(id=new_id("app"))]
            ),
            metadata=client.auth(stranger_pat),
        )
    )
    stranger_api_key = own.apps[0].metadata["default_api_key"]
    response = client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=me(user_id=owner_id, app_id=app_id)),
        metadata=client.auth(stranger_api_key),
    )
    assert response.status.code == codes.CONN_KEY_INVALID
