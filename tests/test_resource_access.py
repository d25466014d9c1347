"""Authorization over real concepts and inputs: collaborators' scopes, strangers, API keys
and PUBLIC apps, on both transports and both databases."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.contract.catalog import load_catalog
from tests.support.api import add_collaborator, me, ok
from tests.support.apps import new_app
from tests.support.clients import Client, new_id
from tests.support.images import png_bytes


def _image_input(input_id: str) -> resources_pb2.Input:
    return resources_pb2.Input(
        id=input_id, data=resources_pb2.Data(image=resources_pb2.Image(base64=png_bytes()))
    )


def _seed(client: Client, pat: str, ids) -> None:
    ok(
        client.stub.PostInputs(
            service_pb2.PostInputsRequest(user_app_id=ids, inputs=[_image_input("seeded")]),
            metadata=client.auth(pat),
        )
    )
    ok(
        client.stub.PostConcepts(
            service_pb2.PostConceptsRequest(
                user_app_id=ids, concepts=[resources_pb2.Concept(id="dog")]
            ),
            metadata=client.auth(pat),
        )
    )


def test_collaborator_with_inputs_get_lists_but_cannot_add(server, client: Client, user):
    owner_id, owner_pat = user
    readable = sorted(load_catalog().methods["ListInputs"].scopes)
    assert "Inputs_Add" not in readable
    app_id, _, guest_pat, _ = add_collaborator(server, client, owner_pat, readable)
    target = me(user_id=owner_id, app_id=app_id)
    _seed(client, owner_pat, me(app_id=app_id))
    guest = client.auth(guest_pat)
    listed = ok(
        client.stub.ListInputs(service_pb2.ListInputsRequest(user_app_id=target), metadata=guest)
    )
    assert [i.id for i in listed.inputs] == ["seeded"]
    refused = client.stub.PostInputs(
        service_pb2.PostInputsRequest(user_app_id=target, inputs=[_image_input("mine")]),
        metadata=guest,
    )
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert "Inputs_Add" in refused.status.details
    after = ok(
        client.stub.ListInputs(
            service_pb2.ListInputsRequest(user_app_id=me(app_id=app_id)),
            metadata=client.auth(owner_pat),
        )
    )
    assert [i.id for i in after.inputs] == ["seeded"]


def test_stranger_cannot_see_a_private_apps_inputs(server, client: Client, user):
    owner_id, owner_pat = user
    app_id, _ = new_app(client, owner_pat)
    _seed(client, owner_pat, me(app_id=app_id))
    stranger = client.auth(server.create_user(new_id()))
    for app in (app_id, "no-such-app"):  # a private app looks exactly like a missing one
        response = client.stub.ListInputs(
            service_pb2.ListInputsRequest(user_app_id=me(user_id=owner_id, app_id=app)),
            metadata=stranger,
        )
        assert response.status.code == codes.CONN_DOES_NOT_EXIST
        assert response.status.description == "Resource does not exist"
        assert not response.inputs


def test_api_key_works_on_its_own_app_only(server, client: Client, user):
    _, pat = user
    app_id, api_key = new_app(client, pat)
    other_app, _ = new_app(client, pat)
    key = client.auth(api_key)
    no_ids = resources_pb2.UserAppIDSet()  # an API key names its app itself
    ok(
        client.stub.PostInputs(
            service_pb2.PostInputsRequest(user_app_id=no_ids, inputs=[_image_input("k1")]),
            metadata=key,
        )
    )
    ok(
        client.stub.PostConcepts(
            service_pb2.PostConceptsRequest(
                user_app_id=no_ids, concepts=[resources_pb2.Concept(id="kc")]
            ),
            metadata=key,
        )
    )
    listed = ok(
        client.stub.ListInputs(
            service_pb2.ListInputsRequest(user_app_id=me(app_id=app_id)), metadata=client.auth(pat)
        )
    )
    assert [i.id for i in listed.inputs] == ["k1"]
    got = ok(
        client.stub.GetConcept(
            service_pb2.GetConceptRequest(user_app_id=no_ids, concept_id="kc"), metadata=key
        )
    )
    assert got.concept.app_id == app_id
    elsewhere = client.stub.ListInputs(
        service_pb2.ListInputsRequest(user_app_id=me(app_id=other_app)), metadata=key
    )
    assert elsewhere.status.code == codes.CONN_KEY_INVALID


def test_stranger_reads_a_public_app_but_cannot_write(server, client: Client, user):
    owner_id, owner_pat = user
    app_id, _ = new_app(client, owner_pat, public=True)
    _seed(client, owner_pat, me(app_id=app_id))
    stranger = client.auth(server.create_user(new_id()))
    target = me(user_id=owner_id, app_id=app_id)
    concepts = ok(
        client.stub.ListConcepts(
            service_pb2.ListConceptsRequest(user_app_id=target), metadata=stranger
        )
    )
    assert [c.id for c in concepts.concepts] == ["dog"]
    got = ok(
        client.stub.GetInput(
            service_pb2.GetInputRequest(user_app_id=target, input_id="seeded"), metadata=stranger
        )
    )
    assert got.input.status.code == codes.INPUT_DOWNLOAD_SUCCESS
    for call, request in (
        (
            client.stub.PostConcepts,
            service_pb2.PostConceptsRequest(
                user_app_id=target, concepts=[resources_pb2.Concept(id="cat")]
            ),
        ),
        (
            client.stub.PatchConcepts,
            service_pb2.PatchConceptsRequest(
                user_app_id=target,
                action="overwrite",
                concepts=[resources_pb2.Concept(id="dog", name="mine")],
            ),
        ),
        (
            client.stub.PostInputs,
            service_pb2.PostInputsRequest(user_app_id=target, inputs=[_image_input("x")]),
        ),
        (
            client.stub.PatchInputs,
            service_pb2.PatchInputsRequest(
                user_app_id=target, action="merge", inputs=[resources_pb2.Input(id="seeded")]
            ),
        ),
        (
            client.stub.DeleteInput,
            service_pb2.DeleteInputRequest(user_app_id=target, input_id="seeded"),
        ),
    ):
        refused = call(request, metadata=stranger)
        assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES, (call, refused.status)
    still = ok(
        client.stub.GetInput(
            service_pb2.GetInputRequest(user_app_id=target, input_id="seeded"), metadata=stranger
        )
    )
    assert still.input.id == "seeded"
