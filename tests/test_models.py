"""Models, versions and predict with the official client, on both transports and both
databases: the built-in colour model and a registered ONNX classifier, with real outputs."""

from __future__ import annotations

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import me, ok
from tests.support.clients import Client, new_id
from tests.support.predicting import (
    BLUE,
    RED,
    image_input,
    new_app,
    new_color_model,
    png,
    register_classifier,
)


def predict(client: Client, secret: str, ids, model_id: str, inputs, **fields):
    return client.stub.PostModelOutputs(
        service_pb2.PostModelOutputsRequest(
            user_app_id=ids, model_id=model_id, inputs=inputs, **fields
        ),
        metadata=client.auth(secret),
    )


def test_model_lifecycle(client: Client, user):
    user_id, pat = user
    app_id, _ = new_app(client, pat)
    ids, auth = me(app_id=app_id), client.auth(pat)
    created = ok(
        client.stub.PostModels(
            service_pb2.PostModelsRequest(
                user_app_id=ids,
                model=resources_pb2.Model(
                    id="colors", name="My colours", model_type_id="color-recognizer"
                ),
            ),
            metadata=auth,
        )
    ).model
    assert (created.id, created.name, created.user_id, created.app_id) == (
        "colors",
        "My colours",
        user_id,
        app_id,
    )
    assert created.model_version.status.code == codes.MODEL_TRAINED
    assert created.visibility.gettable == resources_pb2.Visibility.PRIVATE
    for n in range(3):
        new_color_model(client, pat, ids, f"more-{n}")

    got = ok(
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=ids, model_id="colors"), metadata=auth
        )
    ).model
    assert got.model_type_id == "color-recognizer" and got.version_count == 1
    listed = ok(
        client.stub.ListModels(service_pb2.ListModelsRequest(user_app_id=ids), metadata=auth)
    )
    assert [m.id for m in listed.models] == ["more-2", "more-1", "more-0", "colors"]
    page = ok(
        client.stub.ListModels(
            service_pb2.ListModelsRequest(user_app_id=ids, page=2, per_page=3), metadata=auth
        )
    )
    assert [m.id for m in page.models] == ["colors"]
    mine = ok(
        client.stub.ListModels(service_pb2.ListModelsRequest(user_app_id=me()), metadata=auth)
    )
    assert len(mine.models) == 4  # every app of the user

    patched = ok(
        client.stub.PatchModels(
            service_pb2.PatchModelsRequest(
                user_app_id=ids,
                action="merge",
                models=[resources_pb2.Model(id="colors", description="Dominant colours")],
            ),
            metadata=auth,
        )
    ).models[0]
    assert (patched.name, patched.description) == ("My colours", "Dominant colours")

    def patch_models(action: str, *models):
        return client.stub.PatchModels(
            service_pb2.PatchModelsRequest(user_app_id=ids, action=action, models=list(models)),
            metadata=auth,
        )

    # overwrite: the given fields replace the stored ones, an empty one clears it (a model
    # keeps its name when none is given: it always has one).
    overwritten = ok(
        patch_models("overwrite", resources_pb2.Model(id="colors", notes="Only notes"))
    ).models[0]
    assert (overwritten.name, overwritten.description, overwritten.notes) == (
        "My colours",
        "",
        "Only notes",
    )
    renamed = ok(patch_models("overwrite", resources_pb2.Model(id="colors", name="Colours")))
    assert renamed.models[0].name == "Colours" and renamed.models[0].notes == ""
    for action, model, code, words in (
        ("remove", resources_pb2.Model(id="colors"), codes.CONN_INVALID_REQUEST, "overwrite"),
        ("overwrite", resources_pb2.Model(id="colors", name="n" * 256), None, "at most 255"),
        ("merge", resources_pb2.Model(id="ghost", name="x"), codes.CONN_DOES_NOT_EXIST, "ghost"),
        (
            "merge",
            resources_pb2.Model(id="colors", model_type_id="visual-classifier"),
            codes.CONN_INVALID_REQUEST,
            "cannot change",
        ),
    ):
        refused = patch_models(action, resources_pb2.Model(id="more-0", name="Changed"), model)
        assert refused.status.code == (code or codes.CONN_INVALID_REQUEST), refused.status
        assert words in refused.status.details
    unchanged = ok(
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=ids, model_id="more-0"), metadata=auth
        )
    ).model
    assert unchanged.name != "Changed"  # each refused batch was refused whole
    past_last = ok(
        client.stub.ListModels(
            service_pb2.ListModelsRequest(user_app_id=ids, page=3, per_page=3), metadata=auth
        )
    )
    assert not past_last.models
    too_many = client.stub.ListModels(
        service_pb2.ListModelsRequest(user_app_id=ids, per_page=10**9), metadata=auth
    )
    assert too_many.status.code == codes.CONN_INVALID_REQUEST
    assert "per_page must be at most 1000" in too_many.status.details

    versions = ok(
        client.stub.ListModelVersions(
            service_pb2.ListModelVersionsRequest(user_app_id=ids, model_id="colors"),
            metadata=auth,
        )
    ).model_versions
    assert [v.id for v in versions] == [created.model_version.id]
    version = ok(
        client.stub.GetModelVersion(
            service_pb2.GetModelVersionRequest(
                user_app_id=ids, model_id="colors", version_id=versions[0].id
            ),
            metadata=auth,
        )
    ).model_version
    assert version.status.code == codes.MODEL_TRAINED

    ok(
        client.stub.DeleteModel(
            service_pb2.DeleteModelRequest(user_app_id=ids, model_id="colors"), metadata=auth
        )
    )
    for response in (
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=ids, model_id="colors"), metadata=auth
        ),
        client.stub.GetModelVersion(
            service_pb2.GetModelVersionRequest(
                user_app_id=ids, model_id="more-0", version_id="nope"
            ),
            metadata=auth,
        ),
        predict(client, pat, ids, "colors", [image_input(png())]),
    ):
        assert response.status.code == codes.CONN_DOES_NOT_EXIST, response.status


def test_bad_model_requests(client: Client, user):
    _, pat = user
    app_id, _ = new_app(client, pat)
    ids, auth = me(app_id=app_id), client.auth(pat)
    new_color_model(client, pat, ids)

    def post(model):
        return client.stub.PostModels(
            service_pb2.PostModelsRequest(user_app_id=ids, model=model), metadata=auth
        )

    for model, words in (
        (resources_pb2.Model(id="x", model_type_id="text-to-image"), "Unsupported model_type_id"),
        (resources_pb2.Model(id="colors", model_type_id="color-recognizer"), "already exists"),
        (resources_pb2.Model(id="bad id!", model_type_id="color-recognizer"), "not valid"),
        (
            resources_pb2.Model(id="x", name="n" * 256, model_type_id="color-recognizer"),
            "at most 255",
        ),
        (
            resources_pb2.Model(
                id="x",
                model_type_id="color-recognizer",
                visibility=resources_pb2.Visibility(gettable=resources_pb2.Visibility.PUBLIC),
            ),
            "as visible as its app",
        ),
    ):
        response = post(model)
        assert response.status.code == codes.CONN_INVALID_REQUEST, response.status
        assert words in response.status.details
    empty = predict(client, pat, ids, "colors", [])
    assert empty.status.code == codes.CONN_INVALID_REQUEST
    no_version = predict(client, pat, ids, "colors", [image_input(png())], version_id="nope")
    assert no_version.status.code == codes.CONN_DOES_NOT_EXIST
    too_many = predict(client, pat, ids, "colors", [image_input(png())] * 129)
    assert too_many.status.code == codes.CONN_INVALID_REQUEST
    assert "At most 128 inputs" in too_many.status.details
    nul = client.stub.GetModel(
        service_pb2.GetModelRequest(user_app_id=ids, model_id="colors\x00"), metadata=auth
    )
    assert nul.status.code == codes.CONN_BAD_REQUEST_FORMAT and "model_id" in nul.status.details


def test_colour_predict_on_bytes_batches_and_versions(client: Client, user):
    _, pat = user
    app_id, _ = new_app(client, pat)
    ids = me(app_id=app_id)
    new_color_model(client, pat, ids)
    inputs = [image_input(png(RED), input_id="red-one"), image_input(png(BLUE))]
    answer = ok(predict(client, pat, ids, "colors", inputs))
    assert len(answer.outputs) == 2
    red, blue = answer.outputs
    assert red.input.id == "red-one" and blue.input.id
    assert red.model.id == "colors" and red.status.code == codes.SUCCESS
    assert [(c.raw_hex, c.value) for c in red.data.colors] == [("#e61414", 1.0)]
    assert red.data.colors[0].w3c.hex.startswith("#") and red.data.colors[0].w3c.name
    assert blue.data.colors[0].raw_hex == "#0a14dc"

    version_id = red.model.model_version.id
    pinned = ok(predict(client, pat, ids, "colors", inputs[:1], version_id=version_id))
    assert pinned.outputs[0].model.model_version.id == version_id

    mixed = predict(client, pat, ids, "colors", [image_input(png()), image_input(b"not png")])
    assert mixed.status.code == codes.MIXED_STATUS, mixed.status
    assert mixed.outputs[0].status.code == codes.SUCCESS and mixed.outputs[0].data.colors
    assert mixed.outputs[1].status.code == codes.INPUT_INVALID_ARGUMENT
    assert "not a decodable image" in mixed.outputs[1].status.details
    failed = predict(client, pat, ids, "colors", [image_input(b"")])
    assert failed.status.code == codes.FAILURE
    assert failed.outputs[0].status.code == codes.INPUT_INVALID_ARGUMENT


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_colour_predict_by_url(request, client: Client, user, scheme):
    # over https, from a server whose certificate comes from the CA the servers trust
    image_base = request.getfixturevalue("image_base" if scheme == "http" else "https_image_base")
    _, pat = user
    app_id, _ = new_app(client, pat)
    ids = me(app_id=app_id)
    new_color_model(client, pat, ids)
    url = f"{image_base}/img/30x20.png"  # a (200, 30, 30) PNG
    failing = {
        "nope": "HTTP 404",
        "big": "larger than",
        "slow": "longer than",
        "trickle": "longer than",
        "text": "not a",
    }
    answer = predict(
        client,
        pat,
        ids,
        "colors",
        [image_input(url=url), image_input(url=f"{image_base}/redirect")]
        + [image_input(url=f"{image_base}/{path}") for path in failing],
    )
    assert answer.status.code == codes.MIXED_STATUS, answer.status
    assert "5 of 7 inputs failed" in answer.status.details
    good, redirected, *failed = answer.outputs
    assert good.input.data.image.url == url
    assert [(c.raw_hex, c.value) for c in good.data.colors] == [("#c81e1e", 1.0)]
    assert redirected.status.code == codes.SUCCESS, redirected.status
    for output, (path, reason) in zip(failed, failing.items(), strict=True):
        expected = codes.INPUT_INVALID_ARGUMENT if path == "text" else codes.INPUT_DOWNLOAD_FAILED
        assert output.status.code == expected, (path, output.status)
        assert reason in output.status.details, (path, output.status)
        assert output.input.data.image.url.endswith(path) and not output.data.colors


def test_registered_onnx_classifier(server, client: Client, user, tmp_path):
    user_id, pat = user
    app_id, _ = new_app(client, pat)
    ids, auth = me(app_id=app_id), client.auth(pat)
    ok(
        client.stub.PostModels(
            service_pb2.PostModelsRequest(
                user_app_id=ids,
                model=resources_pb2.Model(id="classes", model_type_id="visual-classifier"),
            ),
            metadata=auth,
        )
    )
    untrained = predict(client, pat, ids, "classes", [image_input(png())])
    assert untrained.status.code == codes.MODEL_UNTRAINED, untrained.status
    assert f"scopegate models register {user_id} {app_id} classes --onnx" in (
        untrained.status.details
    )

    first = register_classifier(server, tmp_path, user_id, app_id, "classes")
    assert (first["labels"], first["input_size"]) == (3, [8, 8])
    answer = ok(
        predict(client, pat, ids, "classes", [image_input(png(RED)), image_input(png(BLUE))])
    )
    red, blue = (output.data.concepts for output in answer.outputs)
    assert [c.id for c in red] == ["red", "green", "blue"] and red[0].value > 0.99
    assert blue[0].name == "blue" and abs(sum(c.value for c in blue) - 1) < 1e-4
    assert answer.outputs[0].model.model_version.id == first["version_id"]

    got = ok(
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=ids, model_id="classes"), metadata=auth
        )
    ).model
    assert [c.name for c in got.output_info.data.concepts] == ["red", "green", "blue"]
    assert got.model_version.status.code == codes.MODEL_TRAINED

    # New weights make a new default version; the old one still answers when named.
    second = register_classifier(server, tmp_path, user_id, app_id, "classes")
    newest = ok(predict(client, pat, ids, "classes", [image_input(png())]))
    assert newest.outputs[0].model.model_version.id == second["version_id"]
    older = ok(
        predict(client, pat, ids, "classes", [image_input(png())], version_id=first["version_id"])
    )
    assert older.outputs[0].data.concepts[0].id == "red"
    top_one = ok(
        predict(
            client,
            pat,
            ids,
            "classes",
            [image_input(png(BLUE))],
            model=resources_pb2.Model(
                output_info=resources_pb2.OutputInfo(
                    output_config=resources_pb2.OutputConfig(max_concepts=1)
                )
            ),
        )
    )
    assert [c.id for c in top_one.outputs[0].data.concepts] == ["blue"]
    versions = ok(
        client.stub.ListModelVersions(
            service_pb2.ListModelVersionsRequest(user_app_id=ids, model_id="classes"),
            metadata=auth,
        )
    ).model_versions
    assert [v.id for v in versions] == [second["version_id"], first["version_id"]]
    pages = [
        [
            v.id
            for v in ok(
                client.stub.ListModelVersions(
                    service_pb2.ListModelVersionsRequest(
                        user_app_id=ids, model_id="classes", page=page, per_page=1
                    ),
                    metadata=auth,
                )
            ).model_versions
        ]
        for page in (1, 2, 3)
    ]
    assert pages == [[second["version_id"]], [first["version_id"]], []]
    pinned = ok(
        client.stub.GetModelVersion(
            service_pb2.GetModelVersionRequest(
                user_app_id=ids, model_id="classes", version_id=first["version_id"]
            ),
            metadata=auth,
        )
    ).model_version
    assert [c.id for c in pinned.output_info.data.concepts] == ["red", "green", "blue"]


def test_concurrent_creates_of_one_model(client: Client, user):
    """Of requests racing to create the same model id, one wins; the others are told it
    already exists (never an internal error)."""
    from concurrent.futures import ThreadPoolExecutor

    _, pat = user
    app_id, _ = new_app(client, pat)
    ids = me(app_id=app_id)

    def create(_n: int):
        return client.stub.PostModels(
            service_pb2.PostModelsRequest(
                user_app_id=ids,
                model=resources_pb2.Model(id="raced", model_type_id="color-recognizer"),
            ),
            metadata=client.auth(pat),
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(create, range(6)))
    codes_seen = sorted(a.status.code for a in answers)
    assert codes_seen == [codes.SUCCESS] + [codes.CONN_INVALID_REQUEST] * 5, answers
    assert all("already exists" in a.status.details for a in answers if a.status.code != 10000)


def test_post_models_with_only_an_id(server, client: Client, user, tmp_path):
    """As Clarifai: a model given only an id (here with output_info.output_config and
    hyper_params) is accepted as a visual-classifier, waiting for weights, and its
    output_info is answered back as given."""
    user_id, pat = user
    app_id, _ = new_app(client, pat)
    ids, auth = me(app_id=app_id), client.auth(pat)
    bare = ok(
        client.stub.PostModels(
            service_pb2.PostModelsRequest(user_app_id=ids, model=resources_pb2.Model(id="bare")),
            metadata=auth,
        )
    ).model
    assert (bare.id, bare.name, bare.model_type_id) == ("bare", "bare", "visual-classifier")
    info = resources_pb2.OutputInfo()
    info.output_config.max_concepts = 3
    info.output_config.min_value = 0.25
    info.output_config.hyper_params.update({"learning_rate": 0.01, "layers": ["a", "b"]})
    ok(
        client.stub.PostModels(
            service_pb2.PostModelsRequest(
                user_app_id=ids, models=[resources_pb2.Model(id="tuned", output_info=info)]
            ),
            metadata=auth,
        )
    )
    got = ok(
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=ids, model_id="tuned"), metadata=auth
        )
    ).model
    assert got.model_type_id == "visual-classifier" and not got.HasField("model_version")
    config = got.output_info.output_config
    assert (config.max_concepts, config.min_value) == (3, 0.25)
    assert dict(config.hyper_params) == {"learning_rate": 0.01, "layers": ["a", "b"]}
    listed = ok(
        client.stub.ListModels(service_pb2.ListModelsRequest(user_app_id=ids), metadata=auth)
    ).models
    by_id = {m.id: m for m in listed}
    assert by_id["tuned"].output_info.output_config == config
    assert by_id["bare"].output_info.output_config.max_concepts == 20  # the default shown
    untrained = predict(client, pat, ids, "bare", [image_input(png())])
    assert untrained.status.code == codes.MODEL_UNTRAINED, untrained.status
    # Once weights are registered, predict honours the output_config the model was made
    # with (max 3 concepts, none under 0.25) unless the request gives its own.
    register_classifier(server, tmp_path, user_id, app_id, "tuned")
    answer = ok(predict(client, pat, ids, "tuned", [image_input(png(RED))]))
    assert [c.id for c in answer.outputs[0].data.concepts] == ["red"]
    given = resources_pb2.Model(output_info=resources_pb2.OutputInfo())
    given.output_info.output_config.max_concepts = 2
    answer = ok(predict(client, pat, ids, "tuned", [image_input(png(RED))], model=given))
    assert len(answer.outputs[0].data.concepts) == 2


GENERAL_ALIAS = "aaa03c23b3724a16a56b629203edc62c"


def test_clarifai_main_answers_to_the_legacy_model_id(client: Client, user):
    """`aaa03c23…` names clarifai/main's general-image-recognition in GetModel, predict and
    the version routes; lists show the canonical id."""
    _, pat = user
    auth = client.auth(pat)
    main = resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")
    got = ok(
        client.stub.GetModel(
            service_pb2.GetModelRequest(user_app_id=main, model_id=GENERAL_ALIAS), metadata=auth
        )
    ).model
    assert (got.id, got.name) == ("general-image-recognition", "General Image Recognition")
    # No weights on these servers: the model is found, and says how to load its weights.
    untrained = predict(client, pat, main, GENERAL_ALIAS, [image_input(png())])
    assert untrained.status.code == codes.MODEL_UNTRAINED, untrained.status
    assert "general-image-recognition --onnx" in untrained.status.details
    versions = client.stub.ListModelVersions(
        service_pb2.ListModelVersionsRequest(user_app_id=main, model_id=GENERAL_ALIAS),
        metadata=auth,
    )
    assert ok(versions).model_versions is not None
    version = client.stub.GetModelVersion(
        service_pb2.GetModelVersionRequest(
            user_app_id=main, model_id=GENERAL_ALIAS, version_id="nope"
        ),
        metadata=auth,
    )
    assert version.status.code == codes.CONN_DOES_NOT_EXIST
    assert "Model 'general-image-recognition' has no version 'nope'" in version.status.details
    listed = ok(
        client.stub.ListModels(service_pb2.ListModelsRequest(user_app_id=main), metadata=auth)
    )
    assert sorted(m.id for m in listed.models) == [
        "color-recognition",
        "general-image-recognition",
    ]
    # An alias is clarifai/main's only: in another app the id names nothing.
    app_id, _ = new_app(client, pat)
    elsewhere = client.stub.GetModel(
        service_pb2.GetModelRequest(user_app_id=me(app_id=app_id), model_id=GENERAL_ALIAS),
        metadata=auth,
    )
    assert elsewhere.status.code == codes.CONN_DOES_NOT_EXIST


@pytest.fixture(scope="module")
def public_only_server(request, tmp_path_factory):
    """A server with the default fetch policy: loopback and private addresses refused."""
    from tests.support.server_process import ServerProcess
    from tests.support.servers import SERVER_ENV

    env = {k: v for k, v in SERVER_ENV.items() if k != "SCOPEGATE_FETCH_PRIVATE_HOSTS"}
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("public-only"), database_url=None, extra_env=env
    ).start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.mark.parametrize("transport", ["grpc", "json"])
def test_ipv6_forms_of_private_ipv4_addresses_are_not_fetched(
    public_only_server, transport, image_base
):
    """IPv4-mapped, IPv4-compatible and NAT64 addresses count as the IPv4 address they
    embed: each names loopback here, so none is fetched."""
    from tests.support.clients import make_stub

    server = public_only_server
    client = Client(transport, make_stub(server, transport))
    pat = server.create_user(new_id())
    app_id, _ = new_app(client, pat)
    ids = me(app_id=app_id)
    new_color_model(client, pat, ids)
    port = image_base.rsplit(":", 1)[1]
    hosts = ["127.0.0.1", "[::ffff:127.0.0.1]", "[::127.0.0.1]", "[64:ff9b::127.0.0.1]"]
    urls = [f"http://{host}:{port}/img/3x3.png" for host in hosts]
    answer = predict(client, pat, ids, "colors", [image_input(url=url) for url in urls])
    assert answer.status.code == codes.FAILURE, answer.status
    for output, host in zip(answer.outputs, hosts, strict=True):
        assert output.status.code == codes.INPUT_INVALID_URL, (host, output.status)
        assert "resolves to a non-public address" in output.status.details, host
