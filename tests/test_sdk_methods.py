"""The methods added for the clarifai SDK (issue 13), through the official V2 clients:
GetModelType, ListModelTypes, GetModelVersion without a version id, PostModelOutputs under
the SDK's signature convention, PatchApp and GetInputCount; and who is refused them."""

from __future__ import annotations

import json
import time

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf import struct_pb2

from tests.support.api import ORGS, add_collaborator, call, me, ok
from tests.support.clients import Client, make_stub, new_id
from tests.support.predicting import image_input, new_app, new_color_model, png

MAIN = resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")
DataType = resources_pb2.ModelTypeField.DataType


def _signature_input(method: str, image: resources_pb2.Image | None = None):
    """An input as the SDK's `Model.predict(image=…)` and its probe send it."""
    data = resources_pb2.Data(metadata=struct_pb2.Struct())
    data.metadata.update({"_method_name": method})
    part = data.parts.add()
    if image is not None:
        part.id = "image"
        part.data.image.CopyFrom(image)
    return resources_pb2.Input(data=data)


def _predict(client: Client, secret: str, ids, model_id: str, *inputs):
    return client.stub.PostModelOutputs(
        service_pb2.PostModelOutputsRequest(user_app_id=ids, model_id=model_id, inputs=inputs),
        metadata=client.auth(secret),
    )


def _untrained_model(client: Client, pat: str) -> resources_pb2.UserAppIDSet:
    """A new app of the PAT's user with `classes`, a classifier without weights."""
    app_id, _ = new_app(client, pat)
    ids = me(app_id=app_id)
    ok(
        client.stub.PostModels(
            service_pb2.PostModelsRequest(user_app_id=ids, model=resources_pb2.Model(id="classes")),
            metadata=client.auth(pat),
        )
    )
    return ids


def test_model_types(client: Client, user):
    _, pat = user
    auth = client.auth(pat)
    colour = ok(
        client.stub.GetModelType(
            service_pb2.GetModelTypeRequest(user_app_id=MAIN, model_type_id="color-recognizer"),
            metadata=auth,
        )
    ).model_type
    assert (colour.title, list(colour.input_fields), list(colour.output_fields)) == (
        "Color Recognizer",
        ["image"],
        ["colors"],
    )
    (signature,) = colour.method_signatures
    assert signature.name == "predict"
    assert [(f.name, f.type) for f in signature.input_fields] == [("image", DataType.IMAGE)]
    assert signature.output_fields[0].type == DataType.LIST
    assert signature.output_fields[0].type_args[0].type == DataType.JSON_DATA
    # Not app data: a PAT lists them on its own account too.
    listed = ok(
        client.stub.ListModelTypes(
            service_pb2.ListModelTypesRequest(user_app_id=me()), metadata=auth
        )
    ).model_types
    by_id = {t.id: t for t in listed}
    assert set(by_id) == {"color-recognizer", "visual-classifier"}
    classifier = by_id["visual-classifier"]
    assert list(classifier.output_fields) == ["concepts"]
    assert classifier.method_signatures[0].output_fields[0].type_args[0].type == DataType.CONCEPT
    unknown = client.stub.GetModelType(
        service_pb2.GetModelTypeRequest(user_app_id=MAIN, model_type_id="text-to-image"),
        metadata=auth,
    )
    assert unknown.status.code == codes.CONN_DOES_NOT_EXIST
    assert "'color-recognizer'" in unknown.status.details


def test_model_version_without_its_id_is_the_newest(server, user):
    # Only gRPC can leave the id out: the REST route names the version in its path.
    client = Client("grpc", make_stub(server, "grpc"))
    _, pat = user
    auth = client.auth(pat)

    def get_version(ids, model_id: str, version_id: str = ""):
        request = service_pb2.GetModelVersionRequest(
            user_app_id=ids, model_id=model_id, version_id=version_id
        )
        return client.stub.GetModelVersion(request, metadata=auth)

    model = ok(
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=MAIN, model_id="color-recognition"),
            metadata=auth,
        )
    ).model
    newest = ok(get_version(MAIN, "color-recognition")).model_version
    assert newest.id == model.model_version.id
    assert [s.name for s in newest.method_signatures] == ["predict"]
    named = ok(get_version(MAIN, "color-recognition", newest.id)).model_version
    assert named.method_signatures == newest.method_signatures
    untrained = get_version(_untrained_model(client, pat), "classes")
    assert untrained.status.code == codes.MODEL_UNTRAINED
    assert "scopegate models register" in untrained.status.details


def test_predict_under_the_signature_convention(client: Client, user):
    _, pat = user
    red = resources_pb2.Image(base64=png((255, 0, 0)))
    answer = ok(_predict(client, pat, MAIN, "color-recognition", _signature_input("predict", red)))
    data = answer.outputs[0].data
    assert data.colors[0].w3c.name == "Red"  # kept beside the parts
    assert dict(data.parts[0].data.struct_value)["raw_hex"] == "#ff0000"
    # The plain convention is unchanged: no parts.
    plain = ok(_predict(client, pat, MAIN, "color-recognition", image_input(png((255, 0, 0)))))
    assert not plain.outputs[0].data.parts
    described = ok(
        _predict(client, pat, MAIN, "color-recognition", _signature_input("_GET_SIGNATURES"))
    )
    signatures = json.loads(described.outputs[0].data.text.raw)
    assert list(signatures) == ["predict"]
    assert signatures["predict"]["inputFields"][0]["name"] == "image"
    unknown = _predict(client, pat, MAIN, "color-recognition", _signature_input("generate", red))
    assert unknown.status.code == codes.FAILURE
    assert unknown.outputs[0].status.code == codes.MODEL_INVALID_ARGUMENT
    assert "'generate'" in unknown.outputs[0].status.details
    # No weights: refused, with an output carrying it (the SDK reads outputs[0]).
    untrained = _predict(
        client, pat, _untrained_model(client, pat), "classes", _signature_input("predict", red)
    )
    assert untrained.status.code == codes.MODEL_UNTRAINED
    assert [o.status.code for o in untrained.outputs] == [codes.MODEL_UNTRAINED]


def _input_count(client: Client, secret: str, ids):
    return client.stub.GetInputCount(
        service_pb2.GetInputCountRequest(user_app_id=ids), metadata=client.auth(secret)
    )


def test_input_count_by_status(client: Client, user, image_base):
    _, pat = user
    app_id, _ = new_app(client, pat)
    ids = me(app_id=app_id)
    assert ok(_input_count(client, pat, ids)).counts == resources_pb2.InputCount()
    ok(
        client.stub.PostInputs(
            service_pb2.PostInputsRequest(
                user_app_id=ids,
                inputs=[
                    image_input(png(), input_id="bytes"),
                    image_input(url=f"{image_base}/img/4x4.png", input_id="fetched"),
                    image_input(url=f"{image_base}/text", input_id="not-an-image"),
                ],
            ),
            metadata=client.auth(pat),
        )
    )
    deadline = time.monotonic() + 30
    counts = ok(_input_count(client, pat, ids)).counts
    while counts.to_process and time.monotonic() < deadline:
        time.sleep(0.1)
        counts = ok(_input_count(client, pat, ids)).counts
    assert (counts.processed, counts.to_process, counts.errors) == (2, 0, 1)


def _patch_app(client: Client, secret: str, ids, app: resources_pb2.App, action: str = ""):
    return client.stub.PatchApp(
        service_pb2.PatchAppRequest(user_app_id=ids, app=app, action=action),
        metadata=client.auth(secret),
    )


def _description(client: Client, pat: str, ids) -> str:
    got = client.stub.GetApp(service_pb2.GetAppRequest(user_app_id=ids), metadata=client.auth(pat))
    return ok(got).app.description


def test_patch_app(client: Client, user):
    _, pat = user
    app_id, _ = new_app(client, pat)
    ids = me(app_id=app_id)
    App = resources_pb2.App
    patched = ok(_patch_app(client, pat, ids, App(id=app_id, description="first"))).app
    assert (patched.id, patched.description) == (app_id, "first")
    public = resources_pb2.Visibility(gettable=resources_pb2.Visibility.PUBLIC)
    merged = ok(_patch_app(client, pat, ids, App(visibility=public, name="Named"), "merge")).app
    assert (merged.description, merged.name, merged.visibility.gettable) == ("first", "Named", 50)
    # The SDK's `base_workflow="Empty"`: what every app here has.
    empty = App(description="second", default_workflow=resources_pb2.Workflow(id="Empty"))
    assert ok(_patch_app(client, pat, ids, empty)).app.description == "second"
    assert ok(_patch_app(client, pat, ids, App(description="x"), "remove")).app.description == ""
    ok(_patch_app(client, pat, ids, App(description="kept")))
    # What scopegate does not store is refused by name, and nothing changes.
    for refused_app, named in (
        (App(description="new", notes="some notes"), "notes"),
        (App(image=resources_pb2.Image(url="https://example.com/a.png")), "image"),
        (App(default_workflow=resources_pb2.Workflow(id="General")), "default_workflow"),
    ):
        refused = _patch_app(client, pat, ids, refused_app)
        assert refused.status.code == codes.CONN_INVALID_REQUEST, refused.status
        assert named in refused.status.details
    refused = _patch_app(client, pat, ids, App(name="x"), "remove")
    assert refused.status.code == codes.CONN_INVALID_REQUEST
    assert _description(client, pat, ids) == "kept"


# --- who is refused ------------------------------------------------------------------------


def _calls(client: Client, ids, app_id: str) -> dict:
    """Each new method, on the app `ids` names (PatchApp also naming `app_id` in its body)."""
    red = resources_pb2.Image(base64=png())
    return {
        "PatchApp": lambda secret: _patch_app(
            client, secret, ids, resources_pb2.App(id=app_id, description="touched"), "merge"
        ),
        "GetInputCount": lambda secret: _input_count(client, secret, ids),
        "GetModelVersion": lambda secret: client.stub.GetModelVersion(
            service_pb2.GetModelVersionRequest(user_app_id=ids, model_id="colors", version_id="x"),
            metadata=client.auth(secret),
        ),
        "PostModelOutputs": lambda secret: _predict(
            client, secret, ids, "colors", _signature_input("_GET_SIGNATURES")
        ),
        "predict": lambda secret: _predict(
            client, secret, ids, "colors", _signature_input("predict", red)
        ),
    }


def _owner_with_two_apps(client: Client, server):
    """An owner (PAT) with a private app holding `colors`, and another app of theirs."""
    owner_id = new_id()
    owner_pat = server.create_user(owner_id)
    app_id, app_key = new_app(client, owner_pat)
    new_color_model(client, owner_pat, me(app_id=app_id))
    other_id, other_key = new_app(client, owner_pat)
    return owner_id, owner_pat, app_id, app_key, other_id, other_key


def test_strangers_and_collaborators_of_another_app_are_refused(client: Client, server):
    owner_id, owner_pat, app_id, _, _, _ = _owner_with_two_apps(client, server)
    ids = me(user_id=owner_id, app_id=app_id)
    stranger = server.create_user(new_id())
    # Granted All on another app of the same owner: nothing on this one, and PatchApp
    # (account-level) not even on the granted app.
    granted_app, _, guest_pat, _ = add_collaborator(server, client, owner_pat, ["All"])
    granted_ids = me(user_id=owner_id, app_id=granted_app)
    for name, secret in (("stranger", stranger), ("collaborator", guest_pat)):
        for method, run in _calls(client, ids, app_id).items():
            reply = run(secret)
            assert reply.status.code == codes.CONN_DOES_NOT_EXIST, (name, method, reply.status)
    assert ok(_input_count(client, guest_pat, granted_ids))  # the grant works where it is
    on_granted = _patch_app(client, guest_pat, granted_ids, resources_pb2.App(description="t"))
    assert on_granted.status.code == codes.CONN_DOES_NOT_EXIST
    assert _description(client, owner_pat, ids) == ""
    assert _description(client, owner_pat, granted_ids) == ""


def test_api_keys_reach_their_own_app_only(client: Client, server):
    owner_id, owner_pat, app_id, app_key, _, other_key = _owner_with_two_apps(client, server)
    ids = me(user_id=owner_id, app_id=app_id)
    calls = _calls(client, ids, app_id)
    assert ok(calls["GetInputCount"](app_key))
    assert ok(calls["predict"](app_key))
    for method, run in calls.items():
        reply = run(other_key)
        if method == "PatchApp":  # a PAT-only method, whichever app the key is for
            assert reply.status.code == codes.CONN_INSUFFICIENT_SCOPES, reply.status
        else:
            assert reply.status.code == codes.CONN_KEY_INVALID, (method, reply.status)
    refused = calls["PatchApp"](app_key)
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES
    assert _description(client, owner_pat, ids) == ""


def test_patch_app_naming_another_app_in_its_body(client: Client, server, user):
    owner_id, owner_pat, app_id, _, other_id, _ = _owner_with_two_apps(client, server)
    ids, other = me(user_id=owner_id, app_id=app_id), me(user_id=owner_id, app_id=other_id)
    # Even the owner names one app: the body's id must be user_app_id's.
    mismatch = _patch_app(client, owner_pat, ids, resources_pb2.App(id=other_id, description="t"))
    assert mismatch.status.code == codes.CONN_INVALID_REQUEST
    assert _description(client, owner_pat, other) == ""
    # An org_contributor creates the organization's apps (Apps_Add on the organization)
    # but patches none: the app is authorized for PatchApp itself.
    _, admin_pat = user
    org_id = new_id("org")
    call(server, "POST", ORGS, admin_pat, {"id": org_id})
    contributor_id = new_id()
    contributor = server.create_user(contributor_id)
    member = {"user_id": contributor_id, "role": "org_contributor"}
    call(server, "POST", f"{ORGS}/{org_id}/members", admin_pat, member)
    org_app = new_id("app")
    ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(
                user_app_id=me(user_id=org_id), apps=[resources_pb2.App(id=org_app)]
            ),
            metadata=client.auth(contributor),
        )
    )
    org_ids = me(user_id=org_id, app_id=org_app)
    refused = _patch_app(client, contributor, org_ids, resources_pb2.App(description="t"))
    assert refused.status.code == codes.CONN_INSUFFICIENT_SCOPES, refused.status
    assert _description(client, admin_pat, org_ids) == ""
    assert ok(_patch_app(client, admin_pat, org_ids, resources_pb2.App(description="admin")))
