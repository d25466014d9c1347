"""Who may do what to models, with real data: the public clarifai/main, private apps,
collaborators without Predict, and API keys bound to one app."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import login, me, ok
from tests.support.clients import Client, new_id
from tests.support.predicting import image_input, new_app, new_color_model, png

MAIN = resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")


def predict(client: Client, secret: str, ids, model_id: str = "color-recognition"):
    return client.stub.PostModelOutputs(
        service_pb2.PostModelOutputsRequest(
            user_app_id=ids, model_id=model_id, inputs=[image_input(png())]
        ),
        metadata=client.auth(secret),
    )


def test_any_pat_predicts_on_clarifai_main_but_cannot_change_it(client: Client, user):
    _, pat = user
    auth = client.auth(pat)
    answer = ok(predict(client, pat, MAIN))
    assert answer.outputs[0].data.colors[0].raw_hex == "#e61414"
    listed = ok(
        client.stub.ListModels(service_pb2.ListModelsRequest(user_app_id=MAIN), metadata=auth)
    )
    assert {"color-recognition", "general-image-recognition"} <= {m.id for m in listed.models}
    assert all(m.visibility.gettable == resources_pb2.Visibility.PUBLIC for m in listed.models)
    for call, request in (
        (
            client.stub.PostModels,
            service_pb2.PostModelsRequest(
                user_app_id=MAIN,
                model=resources_pb2.Model(id=new_id("m"), model_type_id="color-recognizer"),
            ),
        ),
        (
            client.stub.PatchModels,
            service_pb2.PatchModelsRequest(
                user_app_id=MAIN,
                action="merge",
                models=[resources_pb2.Model(id="color-recognition", description="mine")],
            ),
        ),
        (
            client.stub.DeleteModel,
            service_pb2.DeleteModelRequest(user_app_id=MAIN, model_id="color-recognition"),
        ),
    ):
        refused = call(request, metadata=auth)
        assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES, refused.status
    still = ok(
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=MAIN, model_id="color-recognition"),
            metadata=auth,
        )
    )
    assert still.model.description != "mine"


def test_private_models_look_missing_to_strangers(server, client: Client, user):
    owner_id, owner_pat = user
    app_id, _ = new_app(client, owner_pat)
    new_color_model(client, owner_pat, me(app_id=app_id))
    stranger_pat = server.create_user(new_id())
    target = me(user_id=owner_id, app_id=app_id)
    missing_app = me(user_id=owner_id, app_id=new_id("app"))
    answers = [
        client.stub.ListModels(
            service_pb2.ListModelsRequest(user_app_id=ids), metadata=client.auth(stranger_pat)
        )
        for ids in (target, missing_app)
    ]
    answers.append(predict(client, stranger_pat, target, "colors"))
    answers.append(
        client.stub.ListModels(
            service_pb2.ListModelsRequest(user_app_id=me(user_id=owner_id)),
            metadata=client.auth(stranger_pat),
        )
    )
    for answer in answers:
        assert answer.status.code == codes.CONN_DOES_NOT_EXIST, answer.status
        assert answer.status.description == "Resource does not exist"


def test_collaborator_without_predict_is_told_the_scope(server, client: Client, user):
    owner_id, owner_pat = user
    app_id, _ = new_app(client, owner_pat)
    new_color_model(client, owner_pat, me(app_id=app_id))
    guest_id = new_id()
    guest_pat = server.create_user(guest_id)
    ok(
        client.stub.PostCollaborators(
            service_pb2.PostCollaboratorsRequest(
                user_app_id=me(app_id=app_id),
                collaborators=[
                    resources_pb2.Collaborator(
                        user=resources_pb2.User(id=guest_id),
                        scopes=["Models_Get", "Apps_Get", "Concepts_Get"],
                    )
                ],
            ),
            metadata=client.auth(owner_pat),
        )
    )
    target = me(user_id=owner_id, app_id=app_id)
    listed = ok(
        client.stub.ListModels(
            service_pb2.ListModelsRequest(user_app_id=target), metadata=client.auth(guest_pat)
        )
    )
    assert [m.id for m in listed.models] == ["colors"]
    refused = predict(client, guest_pat, target, "colors")
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES, refused.status
    assert "Predict" in refused.status.details


def test_api_key_predicts_in_its_app_only(server, client: Client, user):
    _, pat = user
    app_id, api_key = new_app(client, pat)
    other_app, _ = new_app(client, pat)
    new_color_model(client, pat, me(app_id=app_id))
    new_color_model(client, pat, me(app_id=other_app))
    answer = ok(predict(client, api_key, None, "colors"))  # ids come from the key
    assert answer.outputs[0].data.colors
    for ids in (me(app_id=other_app), MAIN):
        refused = predict(client, api_key, ids, "colors")
        assert refused.status.code == codes.CONN_KEY_INVALID, refused.status


def test_seeded_owner_cannot_log_in_or_be_taken(server):
    status, body = login(server, "clarifai@seed.scopegate.invalid", "anything-1234")
    assert status == 401, body
    taken = server.cli("users", "create", "clarifai", "--email", "me@example.com")
    assert taken.returncode != 0 and "already taken" in taken.stderr
