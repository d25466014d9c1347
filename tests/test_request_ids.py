"""Request ids on a real server: `X-Request-Id` (REST) and `x-request-id` gRPC initial
metadata equal the answer's `status.req_id`, on successes and on every kind of refusal; the
official clients' `x-clarifai-request-id-prefix` begins the id, cut to safe characters."""

from __future__ import annotations

import re

import grpc
import pytest
import requests
from clarifai.client.auth.helper import REQUEST_ID_PREFIX, REQUEST_ID_PREFIX_HEADER
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.clients import new_id
from tests.support.server_process import ServerProcess

SAFE_ID = re.compile(r"[A-Za-z0-9._-]+")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServerProcess(data_dir=tmp_path_factory.mktemp("ids"), database_url=None).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def pat(server) -> str:
    return server.create_user(new_id())


def _get(server, path: str, headers: dict) -> requests.Response:
    return requests.get(server.http_url + path, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("path", "auth", "status"),
    [
        ("/v2/myscopes", "pat", 200),
        ("/v2/myscopes", "garbage", 401),  # refused by the gate, before dispatch
        ("/v2/myscopes", None, 401),
        ("/v2/status_codes/10000", None, 200),  # NoAuth
        ("/v2/users/me/apps?per_page=nope", "pat", 400),  # not decodable
        ("/v2/users/nobody-here/apps/none", "pat", 404),
    ],
)
def test_rest_header_equals_the_status_req_id(server, pat, path, auth, status):
    headers = {}
    if auth == "pat":
        headers["authorization"] = f"Key {pat}"
    elif auth == "garbage":
        headers["authorization"] = "Key sgp_garbage"
    reply = _get(server, path, headers)
    assert reply.status_code == status, reply.text
    req_id = reply.json()["status"]["req_id"]
    assert req_id and SAFE_ID.fullmatch(req_id)
    assert reply.headers["x-request-id"] == req_id


def test_ids_differ_per_request(server, pat):
    ids = {
        _get(server, "/v2/myscopes", {"authorization": f"Key {pat}"}).headers["x-request-id"]
        for _ in range(5)
    }
    assert len(ids) == 5


def test_the_sdk_prefix_begins_the_id_on_both_transports(server, pat):
    # What the official SDK sends with every gRPC call (clarifai.client.auth.helper).
    assert REQUEST_ID_PREFIX.startswith("sdk-python-")
    metadata = (("authorization", f"Key {pat}"), (REQUEST_ID_PREFIX_HEADER, REQUEST_ID_PREFIX))
    host, port = server.grpc_address.split(":")
    stub = service_pb2_grpc.V2Stub(
        ClarifaiChannel.get_insecure_grpc_channel(base=host, port=int(port))
    )
    reply, call = stub.MyScopes.with_call(service_pb2.MyScopesRequest(), metadata=metadata)
    assert reply.status.code == codes.SUCCESS
    assert reply.status.req_id.startswith(REQUEST_ID_PREFIX + "-")
    assert dict(call.initial_metadata())["x-request-id"] == reply.status.req_id

    rest = _get(
        server,
        "/v2/myscopes",
        {"authorization": f"Key {pat}", REQUEST_ID_PREFIX_HEADER: REQUEST_ID_PREFIX},
    )
    assert rest.json()["status"]["req_id"].startswith(REQUEST_ID_PREFIX + "-")
    assert rest.headers["x-request-id"] == rest.json()["status"]["req_id"]


def test_the_json_channel_prefix_is_honoured(server, pat):
    # The official JSON channel sends X-Clarifai-Request-ID-Prefix: python-json-<version>.
    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=server.http_url))
    reply = stub.MyScopes(
        service_pb2.MyScopesRequest(), metadata=(("authorization", f"Key {pat}"),)
    )
    assert reply.status.code == codes.SUCCESS
    assert reply.status.req_id.startswith("python-json-")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("my app/1.0 (linux)", "myapp1.0linux"),
        ("evil\tprefix<script>alert(1)</script>", "evilprefixscriptalert1script"),
        ("a" * 500, "a" * 64),
        ("--..--", ""),
        ("ünïcödé-ok", "ncd-ok"),
    ],
)
def test_a_prefix_is_cut_to_safe_characters(server, pat, sent, kept):
    reply = requests.get(
        server.http_url + "/v2/myscopes",
        headers={"authorization": f"Key {pat}", "x-clarifai-request-id-prefix": sent.encode()},
        timeout=30,
    )
    req_id = reply.json()["status"]["req_id"]
    assert reply.headers["x-request-id"] == req_id
    assert SAFE_ID.fullmatch(req_id)
    if kept:
        assert req_id.startswith(kept + "-sg-")
    else:
        assert req_id.startswith("sg-")
    assert len(req_id) <= 64 + 40


def test_grpc_refusals_carry_the_id_in_initial_metadata(server):
    host, port = server.grpc_address.split(":")
    stub = service_pb2_grpc.V2Stub(
        ClarifaiChannel.get_insecure_grpc_channel(base=host, port=int(port))
    )
    for metadata in (
        (("authorization", "Key nope"),),
        (),
        (("authorization", "Key a"), ("authorization", "Key b")),  # repeated header
    ):
        reply, call = stub.MyScopes.with_call(
            service_pb2.MyScopesRequest(),
            metadata=(*metadata, ("x-clarifai-request-id-prefix", "t")),
        )
        assert reply.status.code != codes.SUCCESS
        assert reply.status.req_id.startswith("t-sg-")
        assert dict(call.initial_metadata())["x-request-id"] == reply.status.req_id
    channel = grpc.insecure_channel(server.grpc_address)
    raw, call = channel.unary_unary("/clarifai.api.V2/MyScopes").with_call(b"\x0a\xff")
    reply = service_pb2.MultiScopeResponse.FromString(raw)
    assert reply.status.code == codes.CONN_BAD_REQUEST_FORMAT
    assert dict(call.initial_metadata())["x-request-id"] == reply.status.req_id
    channel.close()
