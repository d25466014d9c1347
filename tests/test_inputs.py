"""Inputs: image bytes and URLs (served by a loopback HTTP server), the download status as
the real service reports it, patch actions, deletes; both transports and both databases."""

from __future__ import annotations

import base64
import time
from urllib.parse import quote

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import struct_pb2

from tests.support.api import http, me, ok
from tests.support.apps import new_app
from tests.support.clients import Client, new_id
from tests.support.images import image_server, jpeg_bytes, png_bytes

Input, Data, Image, Concept = (
    resources_pb2.Input,
    resources_pb2.Data,
    resources_pb2.Image,
    resources_pb2.Concept,
)


@pytest.fixture(scope="module")
def images_url():
    with image_server() as url:
        yield url


@pytest.fixture
def app(client: Client, user):
    """(client, auth metadata, user_app_id) of a fresh app."""
    _, pat = user
    app_id, _ = new_app(client, pat)
    return client, client.auth(pat), me(app_id=app_id)


def struct(**values) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def from_bytes(input_id: str, data: bytes, **extra) -> Input:
    return Input(id=input_id, data=Data(image=Image(base64=data), **extra))


def from_url(input_id: str, url: str) -> Input:
    return Input(id=input_id, data=Data(image=Image(url=url)))


def post(app, *inputs):
    client, auth, ids = app
    return client.stub.PostInputs(
        service_pb2.PostInputsRequest(user_app_id=ids, inputs=list(inputs)), metadata=auth
    )


def get(app, input_id: str):
    client, auth, ids = app
    return client.stub.GetInput(
        service_pb2.GetInputRequest(user_app_id=ids, input_id=input_id), metadata=auth
    )


def listed(app, **request) -> list[str]:
    client, auth, ids = app
    response = ok(
        client.stub.ListInputs(
            service_pb2.ListInputsRequest(user_app_id=ids, **request), metadata=auth
        )
    )
    return [i.id for i in response.inputs]


def settled(app, input_ids, timeout: float = 15.0) -> dict:
    """Each input once its download is no longer pending."""
    deadline = time.monotonic() + timeout
    found = {}
    while time.monotonic() < deadline:
        for input_id in input_ids:
            if input_id not in found:
                current = ok(get(app, input_id)).input
                if current.status.code != codes.INPUT_DOWNLOAD_PENDING:
                    found[input_id] = current
        if len(found) == len(input_ids):
            return found
        time.sleep(0.2)
    raise AssertionError(f"still pending after {timeout}s: {set(input_ids) - set(found)}")


def test_bytes_input_is_stored_with_its_concepts_and_metadata(app):
    client, auth, ids = app
    posted = ok(
        post(
            app,
            from_bytes(
                "photo1",
                png_bytes(7, 5),
                concepts=[Concept(id="dog", value=1), Concept(id="cat", name="Cat", value=0)],
                metadata=struct(source="camera", tags={"a": 1}),
            ),
            from_bytes("photo2", jpeg_bytes(8, 8)),
        )
    )
    # As the real service answers: every new input is "Download pending" in this response.
    assert [(i.id, i.status.code, i.status.description) for i in posted.inputs] == [
        ("photo1", codes.INPUT_DOWNLOAD_PENDING, "Download pending"),
        ("photo2", codes.INPUT_DOWNLOAD_PENDING, "Download pending"),
    ]
    got = ok(get(app, "photo1")).input
    assert (got.status.code, got.status.description) == (
        codes.INPUT_DOWNLOAD_SUCCESS,
        "Download complete",
    )
    info = got.data.image.image_info
    assert (info.width, info.height, info.format, info.color_mode) == (7, 5, "PNG", "RGB")
    assert not got.data.image.base64  # bytes are stored, never echoed
    assert [(c.id, c.name, c.value) for c in got.data.concepts] == [
        ("dog", "dog", 1.0),  # in the order given
        ("cat", "Cat", 0.0),
    ]
    assert got.data.metadata["source"] == "camera"
    assert got.data.metadata["tags"]["a"] == 1
    assert ok(get(app, "photo2")).input.data.image.image_info.format == "JPEG"
    # Unknown concepts were created in the app, as Clarifai does.
    concept = ok(
        client.stub.GetConcept(
            service_pb2.GetConceptRequest(user_app_id=ids, concept_id="cat"), metadata=auth
        )
    )
    assert concept.concept.name == "Cat"
    generated = ok(post(app, Input(data=Data(image=Image(base64=png_bytes())))))
    assert len(generated.inputs[0].id) == 32  # an id is generated when none is given


def test_bad_bytes_refuse_the_request_and_write_nothing(app):
    refused = post(
        app,
        from_bytes("good", png_bytes()),
        from_bytes("garbage", b"this is not an image"),
        from_bytes("huge", png_bytes() + b"\0" * (1024 * 1024)),
        Input(id="empty"),
        from_bytes("truncated", png_bytes(50, 50)[:60]),
        from_bytes("long-label", png_bytes(), concepts=[Concept(id="x", name="n" * 256)]),
    )
    assert refused.status.code == codes.INPUT_INVALID_REQUEST
    assert refused.status.description == "Invalid request"
    assert "5 of 6 inputs refused" in refused.status.details
    assert "nothing was written" in refused.status.details
    by_id = {i.id: i.status for i in refused.inputs}
    assert by_id["garbage"].code == codes.INPUT_INVALID_ARGUMENT
    assert "not a decodable image" in by_id["garbage"].details
    assert by_id["huge"].code == codes.INPUT_OVER_LIMIT
    assert "limit is 1048576 bytes" in by_id["huge"].details
    assert by_id["empty"].code == codes.INPUT_INVALID_ARGUMENT
    assert "no image" in by_id["empty"].details
    assert by_id["truncated"].code == codes.INPUT_INVALID_ARGUMENT
    assert "not a decodable image" in by_id["truncated"].details
    assert by_id["long-label"].code == codes.INPUT_INVALID_ARGUMENT
    assert "too long" in by_id["long-label"].details
    assert by_id["good"].code == codes.INPUT_INVALID_REQUEST  # fine, but not written
    assert listed(app) == []
    assert get(app, "good").status.code == codes.CONN_DOES_NOT_EXIST
    client, auth, ids = app
    concepts = client.stub.ListConcepts(
        service_pb2.ListConceptsRequest(user_app_id=ids), metadata=auth
    )
    assert not ok(concepts).concepts  # not even the labels' concepts
    nul = post(app, from_url("n", "http://example.com/a\x00.png"))
    assert nul.status.code == codes.CONN_BAD_REQUEST_FORMAT, nul.status
    assert "inputs[0].data.image.url" in nul.status.details


def test_metadata_json_cannot_hold_refuses_that_input(client: Client, user):
    """gRPC can carry NaN in a Struct; JSON (so the stored metadata) cannot."""
    if client.transport != "grpc":
        pytest.skip("the JSON channel cannot send NaN")
    _, pat = user
    app = (client, client.auth(pat), me(app_id=new_app(client, pat)[0]))
    bad = struct()
    bad.update({"score": float("inf")})
    refused = post(app, from_bytes("ok", png_bytes()), from_bytes("nan", png_bytes(), metadata=bad))
    assert refused.status.code == codes.INPUT_INVALID_REQUEST
    assert refused.inputs[1].status.code == codes.INPUT_INVALID_ARGUMENT
    assert "NaN or infinity" in refused.inputs[1].status.details
    assert listed(app) == []
    ok(post(app, from_bytes("p", png_bytes())))
    patched = patch(app, "merge", Input(id="p", data=Data(metadata=bad)))
    assert patched.status.code == codes.CONN_INVALID_REQUEST, patched.status
    assert "NaN or infinity" in patched.status.details


def nested(levels: int) -> dict:
    """A JSON object `levels` objects deep: {"a": {"a": ... {"leaf": 1}}}."""
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_deeply_nested_metadata_is_refused_naming_the_limit(server, client: Client, user):
    """Metadata deeper than 20 levels is refused with the input's status naming the limit;
    before, 33 levels and more answered 500 (a DecodeError building the answer). gRPC
    clients cannot even build a Struct 33 deep, so 31 is the deepest sent that way; plain
    REST sends the deeper ones."""
    _, pat = user
    app = (client, client.auth(pat), me(app_id=new_app(client, pat)[0]))
    ok(post(app, from_bytes("at-limit", png_bytes(), metadata=struct(**nested(20)))))
    assert ok(get(app, "at-limit")).input.data.metadata == struct(**nested(20))
    for levels in (21, 31):
        refused = post(app, from_bytes("deep", png_bytes(), metadata=struct(**nested(levels))))
        assert refused.status.code == codes.INPUT_INVALID_REQUEST, refused.status
        assert refused.inputs[0].status.code == codes.INPUT_INVALID_ARGUMENT
        assert refused.inputs[0].status.details == (
            f"data.metadata nests {levels} levels of objects and lists; the limit is 20."
        )
    patched = patch(app, "merge", Input(id="at-limit", data=Data(metadata=struct(**nested(25)))))
    assert patched.status.code == codes.CONN_INVALID_REQUEST, patched.status
    assert "nests 25 levels of objects and lists; the limit is 20" in patched.status.details
    if client.transport != "json":
        return
    app_id = app[2].app_id
    image = base64.b64encode(png_bytes()).decode()
    for levels in (34, 60, 90):
        body = {
            "inputs": [
                {"id": "d", "data": {"image": {"base64": image}, "metadata": nested(levels)}}
            ]
        }
        code, answer = http(
            server, "POST", f"/v2/users/me/apps/{app_id}/inputs",
            headers={"authorization": f"Key {pat}", "content-type": "application/json"},
            body=body,
        )  # fmt: skip
        assert code == 400, (levels, answer)
        assert answer["status"]["code"] == codes.INPUT_INVALID_REQUEST, (levels, answer)
        assert answer["inputs"][0]["status"]["details"] == (
            f"data.metadata nests {levels} levels of objects and lists; the limit is 20."
        )
    assert listed(app) == ["at-limit"]


def test_non_image_bytes_are_named_without_a_python_repr(client: Client, user):
    _, pat = user
    app = (client, client.auth(pat), me(app_id=new_app(client, pat)[0]))
    refused = post(app, from_bytes("t", b"hello, not an image"))
    assert refused.inputs[0].status.code == codes.INPUT_INVALID_ARGUMENT
    details = refused.inputs[0].status.details
    assert details == "The bytes are not a decodable image (no known format)."


@pytest.mark.parametrize("path", ["inputs", "models/colors/outputs"])
def test_bad_base64_over_rest_is_a_body_format_error(server, user, path):
    """Invalid base64 in a JSON body is 11100 (HTTP 400), as the README says; before, the
    JSON codec dropped the characters it did not know, so "@@" read as no image at all
    (30104 "has no image")."""
    _, pat = user
    app_id = new_app_rest(server, pat)
    headers = {"authorization": f"Key {pat}", "content-type": "application/json"}
    if path != "inputs":
        code, answer = http(
            server, "POST", f"/v2/users/me/apps/{app_id}/models", headers=headers,
            body={"model": {"id": "colors", "model_type_id": "color-recognizer"}},
        )  # fmt: skip
        assert code == 200, answer
    for bad in ("@@", "not base64!", "aGVsbG8=x", "a"):
        code, answer = http(
            server, "POST", f"/v2/users/me/apps/{app_id}/{path}", headers=headers,
            body={"inputs": [{"data": {"image": {"base64": bad}}}]},
        )  # fmt: skip
        assert code == 400, (bad, answer)
        assert answer["status"]["code"] == codes.CONN_BAD_REQUEST_FORMAT, (bad, answer)
        assert "base64" in answer["status"]["details"] and " at 0x" not in str(answer)


def new_app_rest(server, pat: str) -> str:
    app_id = new_id("app")
    code, answer = http(
        server, "POST", "/v2/users/me/apps",
        headers={"authorization": f"Key {pat}", "content-type": "application/json"},
        body={"apps": [{"id": app_id}]},
    )  # fmt: skip
    assert code == 200, answer
    return app_id


def test_duplicate_input_ids(app):
    ok(post(app, from_bytes("one", png_bytes())))
    again = post(app, from_bytes("two", png_bytes()), from_bytes("one", png_bytes()))
    assert again.status.code == codes.INPUT_INVALID_REQUEST
    assert {i.id: i.status.code for i in again.inputs}["one"] == codes.INPUT_DUPLICATE
    assert listed(app) == ["one"]
    twice = post(app, from_bytes("x", png_bytes()), from_bytes("x", png_bytes()))
    assert twice.status.code == codes.INPUT_INVALID_REQUEST


@pytest.fixture(params=["http", "https"])
def any_images_url(request) -> str:
    """The image server over plain HTTP, and over HTTPS with a certificate from the test CA
    the servers trust."""
    return request.getfixturevalue("images_url" if request.param == "http" else "https_image_base")


def test_url_inputs_download_in_the_background(app, any_images_url):
    images_url = any_images_url
    cases = {
        "ok": (f"{images_url}/img/6x4.png", codes.INPUT_DOWNLOAD_SUCCESS, ""),
        "redirected": (f"{images_url}/redirect", codes.INPUT_DOWNLOAD_SUCCESS, ""),
        "missing": (f"{images_url}/nope.png", codes.INPUT_DOWNLOAD_FAILED, "HTTP 404"),
        "big": (f"{images_url}/big", codes.INPUT_DOWNLOAD_FAILED, "larger than 1048576"),
        "slow": (f"{images_url}/slow", codes.INPUT_DOWNLOAD_FAILED, "longer than allowed"),
        "trickle": (f"{images_url}/trickle", codes.INPUT_DOWNLOAD_FAILED, "longer than allowed"),
        "text": (f"{images_url}/text", codes.INPUT_DOWNLOAD_FAILED, "not a decodable image"),
    }
    posted = ok(post(app, *(from_url(name, url) for name, (url, _, _) in cases.items())))
    assert {i.status.code for i in posted.inputs} == {codes.INPUT_DOWNLOAD_PENDING}
    assert posted.inputs[0].data.image.url == cases["ok"][0]
    results = settled(app, list(cases))
    for name, (url, code, reason) in cases.items():
        status = results[name].status
        assert status.code == code, (name, status)
        assert reason in status.details, (name, status)
        assert results[name].data.image.url == url
    assert results["missing"].status.description == "Download failed"
    info = results["ok"].data.image.image_info
    assert (info.width, info.height) == (6, 4)
    assert sorted(listed(app, status=status_pb2.Status(code=codes.INPUT_DOWNLOAD_SUCCESS))) == [
        "ok",
        "redirected",
    ]
    failed = listed(app, status=status_pb2.Status(code=codes.INPUT_DOWNLOAD_FAILED))
    assert sorted(failed) == ["big", "missing", "slow", "text", "trickle"]


def test_https_inputs_verify_certificates_and_follow_redirects(app, https_images, images_url):
    if https_images is None:
        pytest.skip("the openssl command is not installed")
    back = f"{https_images.base}/img/7x3.png"
    there_and_back = f"{https_images.base}/to?url=" + quote(
        f"{images_url}/to?url=" + quote(back, safe=""), safe=""
    )
    refused = "The certificate of '127.0.0.1' is not trusted: "
    cases = {
        "back": (there_and_back, codes.INPUT_DOWNLOAD_SUCCESS, ""),
        "wrong-name": (
            f"{https_images.wrong_name}/img/2x2.png",
            codes.INPUT_DOWNLOAD_FAILED,
            refused + "IP address mismatch, certificate is not valid for '127.0.0.1'.",
        ),
        "untrusted": (
            f"{https_images.untrusted}/img/2x2.png",
            codes.INPUT_DOWNLOAD_FAILED,
            refused + "self-signed certificate in certificate chain.",
        ),
        "expired": (
            f"{https_images.expired}/img/2x2.png",
            codes.INPUT_DOWNLOAD_FAILED,
            refused + "certificate has expired.",
        ),
    }
    ok(post(app, *(from_url(name, url) for name, (url, _, _) in cases.items())))
    results = settled(app, list(cases))
    for name, (_, code, details) in cases.items():
        assert results[name].status.code == code, (name, results[name].status)
        assert results[name].status.details == details, (name, results[name].status)
    info = results["back"].data.image.image_info
    assert (info.width, info.height, info.format) == (7, 3, "PNG")


def test_non_http_urls_are_refused_at_once(app):
    refused = post(app, from_url("f", "file:///etc/passwd"), from_url("g", "ftp://x/y.png"))
    assert refused.status.code == codes.INPUT_INVALID_REQUEST
    assert [i.status.code for i in refused.inputs] == [codes.INPUT_INVALID_URL] * 2
    assert "http or https" in refused.inputs[0].status.details


def test_list_pages_and_filters(app):
    ok(post(app, *(from_bytes(f"in{n}", png_bytes()) for n in range(5))))
    assert listed(app) == ["in4", "in3", "in2", "in1", "in0"]  # newest first
    assert listed(app, page=1, per_page=2) == ["in4", "in3"]
    assert listed(app, page=3, per_page=2) == ["in0"]
    assert listed(app, page=4, per_page=2) == []
    assert sorted(listed(app, ids=["in1", "in3", "other"])) == ["in1", "in3"]


def patch(app, action: str, *inputs):
    client, auth, ids = app
    return client.stub.PatchInputs(
        service_pb2.PatchInputsRequest(user_app_id=ids, action=action, inputs=list(inputs)),
        metadata=auth,
    )


def test_patch_actions(app):
    ok(
        post(
            app,
            from_bytes(
                "p",
                png_bytes(),
                concepts=[Concept(id="dog", value=1)],
                metadata=struct(a=1, nested={"x": 1, "y": 2}),
            ),
        )
    )
    merged = ok(
        patch(
            app,
            "merge",
            Input(
                id="p",
                data=Data(
                    metadata=struct(b=2, nested={"y": 3}), concepts=[Concept(id="cat", value=1)]
                ),
            ),
        )
    ).inputs[0]
    assert dict(merged.data.metadata) == {"a": 1, "b": 2, "nested": {"x": 1, "y": 3}}
    assert [c.id for c in merged.data.concepts] == ["dog", "cat"]  # a merge appends new concepts
    removed = ok(
        patch(
            app,
            "remove",
            Input(
                id="p",
                data=Data(
                    metadata=struct(a=None, nested={"x": None}), concepts=[Concept(id="dog")]
                ),
            ),
        )
    ).inputs[0]
    assert dict(removed.data.metadata) == {"b": 2, "nested": {"y": 3}}
    assert [c.id for c in removed.data.concepts] == ["cat"]
    overwritten = ok(
        patch(
            app,
            "overwrite",
            Input(
                id="p", data=Data(metadata=struct(only=True), concepts=[Concept(id="fox", value=1)])
            ),
        )
    ).inputs[0]
    assert dict(overwritten.data.metadata) == {"only": True}
    assert [c.id for c in overwritten.data.concepts] == ["fox"]
    stored = ok(get(app, "p")).input
    assert dict(stored.data.metadata) == {"only": True}
    assert stored.modified_at.ToNanoseconds() > stored.created_at.ToNanoseconds()

    missing = patch(app, "merge", Input(id="p", data=Data(metadata=struct(z=1))), Input(id="gone"))
    assert missing.status.code == codes.CONN_DOES_NOT_EXIST and "gone" in missing.status.details
    assert "z" not in dict(ok(get(app, "p")).input.data.metadata)  # all or nothing
    bad = patch(app, "replace", Input(id="p"))
    assert bad.status.code == codes.CONN_INVALID_REQUEST and "merge" in bad.status.details


def test_concepts_keep_the_order_they_were_given(app):
    """As Clarifai: the posted order (not sorted by id), a merge appends new concepts after
    the existing ones and updates others in place, an overwrite takes the order given."""

    def order(answer) -> list[tuple[str, float]]:
        return [(c.id, c.value) for c in answer.data.concepts]

    given = [Concept(id=i, value=v) for i, v in (("zebra", 1), ("apple", 0), ("mango", 1))]
    posted = ok(post(app, from_bytes("o", png_bytes(), concepts=given))).inputs[0]
    expected = [("zebra", 1.0), ("apple", 0.0), ("mango", 1.0)]
    assert order(ok(get(app, "o")).input) == expected
    merged = ok(
        patch(
            app,
            "merge",
            Input(
                id="o",
                data=Data(concepts=[Concept(id="banana", value=1), Concept(id="apple", value=1)]),
            ),
        )
    ).inputs[0]
    expected = [("zebra", 1.0), ("apple", 1.0), ("mango", 1.0), ("banana", 1.0)]
    assert order(merged) == expected
    assert order(ok(get(app, "o")).input) == expected
    client, auth, ids = app
    listed_input = ok(
        client.stub.ListInputs(service_pb2.ListInputsRequest(user_app_id=ids), metadata=auth)
    ).inputs[0]
    assert order(listed_input) == expected
    removed = ok(patch(app, "remove", Input(id="o", data=Data(concepts=[Concept(id="apple")]))))
    expected = [("zebra", 1.0), ("mango", 1.0), ("banana", 1.0)]
    assert order(removed.inputs[0]) == expected
    again = [Concept(id="mango", value=0), Concept(id="aardvark", value=1)]
    overwritten = ok(patch(app, "overwrite", Input(id="o", data=Data(concepts=again))))
    assert order(overwritten.inputs[0]) == [("mango", 0.0), ("aardvark", 1.0)]
    assert posted.id == "o"


def test_deletes(app):
    client, auth, ids = app
    ok(post(app, *(from_bytes(f"d{n}", png_bytes()) for n in range(4))))
    ok(
        client.stub.DeleteInput(
            service_pb2.DeleteInputRequest(user_app_id=ids, input_id="d0"), metadata=auth
        )
    )
    assert get(app, "d0").status.code == codes.CONN_DOES_NOT_EXIST
    again = client.stub.DeleteInput(
        service_pb2.DeleteInputRequest(user_app_id=ids, input_id="d0"), metadata=auth
    )
    assert again.status.code == codes.CONN_DOES_NOT_EXIST
    partly = client.stub.DeleteInputs(
        service_pb2.DeleteInputsRequest(user_app_id=ids, ids=["d1", "nope"]), metadata=auth
    )
    assert partly.status.code == codes.CONN_DOES_NOT_EXIST and "nope" in partly.status.details
    many = client.stub.DeleteInputs(
        service_pb2.DeleteInputsRequest(user_app_id=ids, ids=[f"m{n:03}" for n in range(128)]),
        metadata=auth,
    )
    assert many.status.code == codes.CONN_DOES_NOT_EXIST
    assert many.status.details.startswith("Not in this app: m000, m001,")
    assert "m019 and 108 more. Nothing was deleted." in many.status.details
    assert sorted(listed(app)) == ["d1", "d2", "d3"]  # nothing deleted
    ok(
        client.stub.DeleteInputs(
            service_pb2.DeleteInputsRequest(user_app_id=ids, ids=["d1", "d2"]), metadata=auth
        )
    )
    assert listed(app) == ["d3"]
    # Deleting the app deletes its inputs and concepts with it.
    ok(client.stub.DeleteApp(service_pb2.DeleteAppRequest(user_app_id=ids), metadata=auth))
    assert get(app, "d3").status.code == codes.CONN_DOES_NOT_EXIST


def test_plain_rest_as_in_the_clarifai_docs(server, user):
    """curl-style JSON: a concept without `value` is present (1), as Clarifai reads it; a
    value of 0 is shown in answers, not left out; refused inputs answer HTTP 400."""
    _, pat = user
    app_id = new_id("app")
    headers = {"authorization": f"Key {pat}", "content-type": "application/json"}
    status, _ = http(
        server, "POST", "/v2/users/me/apps", headers=headers, body={"apps": [{"id": app_id}]}
    )
    assert status == 200
    image = base64.b64encode(png_bytes()).decode()
    status, body = http(
        server,
        "POST",
        f"/v2/users/me/apps/{app_id}/inputs",
        headers=headers,
        body={
            "inputs": [
                {
                    "id": "r1",
                    "data": {
                        "image": {"base64": image},
                        "concepts": [{"id": "yes"}, {"id": "no", "value": 0}],
                    },
                }
            ]
        },
    )
    assert status == 200, body
    assert body["inputs"][0]["status"]["code"] == codes.INPUT_DOWNLOAD_PENDING
    status, body = http(server, "GET", f"/v2/users/me/apps/{app_id}/inputs/r1", headers=headers)
    assert status == 200
    assert body["input"]["status"]["code"] == codes.INPUT_DOWNLOAD_SUCCESS
    values = {c["id"]: c["value"] for c in body["input"]["data"]["concepts"]}
    assert values == {"yes": 1, "no": 0}
    status, body = http(
        server,
        "POST",
        f"/v2/users/me/apps/{app_id}/inputs",
        headers=headers,
        body={"inputs": [{"data": {"image": {"base64": "bm90IGFuIGltYWdl"}}}]},
    )
    assert status == 400
    assert body["status"]["code"] == codes.INPUT_INVALID_REQUEST
    assert body["inputs"][0]["status"]["code"] == codes.INPUT_INVALID_ARGUMENT
    # Not base64 at all: the body is refused whole, as a bad request format, never a 500.
    for sent in ("a", 5, ["x"]):
        status, body = http(
            server,
            "POST",
            f"/v2/users/me/apps/{app_id}/inputs",
            headers=headers,
            body={"inputs": [{"id": "b64", "data": {"image": {"base64": sent}}}]},
        )
        assert status == 400, body
        assert body["status"]["code"] == codes.CONN_BAD_REQUEST_FORMAT, body
        assert "base64" in body["status"]["details"]
    status, body = http(
        server, "GET", f"/v2/users/me/apps/{app_id}/inputs?per_page=5000", headers=headers
    )
    assert status == 400 and "per_page must be at most 1000" in body["status"]["details"]
    status, body = http(server, "GET", f"/v2/users/me/apps/{app_id}/inputs/r%00", headers=headers)
    assert status == 400 and body["status"]["code"] == codes.CONN_BAD_REQUEST_FORMAT, body


def test_concurrent_posts_sharing_a_new_concept_or_an_id(app):
    """Requests racing to create the same concept (as labels) or the same input id: every
    label request is stored and the concept once; of the same id, one wins and the others
    are refused as duplicates. Never an internal error."""
    from concurrent.futures import ThreadPoolExecutor

    client, auth, ids = app

    def labelled(n: int):
        return post(app, from_bytes(f"lab{n}", png_bytes(), concepts=[Concept(id="shared")]))

    def same_id(_n: int):
        return post(app, from_bytes("same", png_bytes(), concepts=[Concept(id=f"own{_n}")]))

    with ThreadPoolExecutor(6) as pool:
        labels = list(pool.map(labelled, range(6)))
        racing = list(pool.map(same_id, range(6)))
    assert [r.status.code for r in labels] == [codes.SUCCESS] * 6, [r.status for r in labels]
    assert (
        sorted(r.status.code for r in racing) == [codes.SUCCESS] + [codes.INPUT_INVALID_REQUEST] * 5
    ), [r.status for r in racing]
    for refused in racing:
        if refused.status.code != codes.SUCCESS:
            assert refused.inputs[0].status.code == codes.INPUT_DUPLICATE, refused.inputs[0]
    assert len(listed(app)) == 7
    shared = ok(
        client.stub.ListConcepts(service_pb2.ListConceptsRequest(user_app_id=ids), metadata=auth)
    )
    assert sum(1 for c in shared.concepts if c.id == "shared") == 1
    assert sum(1 for c in shared.concepts if c.id.startswith("own")) == 1  # the winner's
