"""A sweep generated from the catalog: every method, on both transports, answers a Clarifai
status: no 5xx, no crash, no hang. Unauthenticated calls get their auth error first."""

from __future__ import annotations

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf.descriptor import FieldDescriptor

from scopegate.contract.catalog import AuthType, MethodSpec, load_catalog
from scopegate.contract.status import http_status
from tests.support.api import http
from tests.support.clients import make_stub, new_id

CATALOG = load_catalog()
KNOWN_CODES = set(CATALOG.status_codes)
AUTHENTICATED = [s for s in CATALOG.methods.values() if s.auth_type is not AuthType.NO_AUTH]


@pytest.fixture(scope="module")
def owner(server):
    """A user with an app, and its PAT (all scopes)."""
    user_id = new_id()
    pat = server.create_user(user_id)
    stub = make_stub(server, "grpc")
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2

    app_id = new_id("app")
    response = stub.PostApps(
        service_pb2.PostAppsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
            apps=[resources_pb2.App(id=app_id)],
        ),
        metadata=(("authorization", f"Key {pat}"),),
    )
    assert response.status.code == codes.SUCCESS
    return user_id, app_id, pat


def _grpc_call(stub, spec: MethodSpec, request, metadata):
    method = getattr(stub, spec.name)
    if spec.client_streaming:
        result = method(iter([request]), metadata=metadata, timeout=30)
    else:
        result = method(request, metadata=metadata, timeout=30)
    return list(result) if spec.server_streaming else [result]


def _assert_status(spec: MethodSpec, responses):
    assert responses, f"{spec.name} answered nothing"
    for response in responses:
        assert response.status.code in KNOWN_CODES, (spec.name, response.status)
        assert response.status.code != codes.FAILURE, (spec.name, response.status)


def test_grpc_every_method_without_credentials(server):
    stub = make_stub(server, "grpc")
    for spec in CATALOG.methods.values():
        responses = _grpc_call(stub, spec, spec.input_type(), ())
        _assert_status(spec, responses)
        if spec.auth_type is not AuthType.NO_AUTH:
            assert responses[0].status.code == codes.CONN_INVALID_REQUEST, spec.name


def test_grpc_every_method_with_owner_pat(server, owner):
    user_id, app_id, pat = owner
    stub = make_stub(server, "grpc")
    for spec in CATALOG.methods.values():
        request = spec.input_type()
        if spec.has_user_app_id:
            request.user_app_id.user_id = user_id
            request.user_app_id.app_id = app_id
        responses = _grpc_call(stub, spec, request, (("authorization", f"Key {pat}"),))
        _assert_status(spec, responses)
        code = responses[0].status.code
        # A PAT with all scopes is refused only where a session is required.
        if spec.auth_type is AuthType.SESSION_TOKEN_AUTH:
            assert code == codes.CONN_INSUFFICIENT_SCOPES, spec.name
        else:
            assert code not in (codes.CONN_INSUFFICIENT_SCOPES, codes.CONN_KEY_INVALID), (
                spec.name,
                responses[0].status,
            )


def _fill_path(template: str, user_id: str, app_id: str) -> str:
    path = template
    for segment in template.split("/"):
        if segment.startswith("{"):
            name = segment[1:-1]
            value = {"user_app_id.user_id": user_id, "user_app_id.app_id": app_id}.get(name)
            path = path.replace(segment, value or "x1", 1)
    return path


def _field_type(spec: MethodSpec, dotted: str) -> int:
    descriptor, field = spec.input_type.DESCRIPTOR, None
    for name in dotted.split("."):
        field = descriptor.fields_by_name[name]
        descriptor = field.message_type
    return field.type


def _numeric_path(spec: MethodSpec, binding) -> bool:
    numeric = {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_ENUM,
    }
    return any(_field_type(spec, v) in numeric for v in binding.variables)


def test_rest_every_binding(server, owner):
    """All bindings, with and without a PAT. Path values of the wrong type give 400."""
    _user_id, app_id, pat = owner
    seen = 0
    for spec in CATALOG.methods.values():
        for binding in spec.bindings:
            path = _fill_path(binding.template, "me", app_id)
            body = {} if binding.body else None
            for headers in ({}, {"authorization": f"Key {pat}"}):
                status, reply = http(server, binding.verb, path, headers=headers, body=body)
                seen += 1
                code = reply["status"]["code"]
                assert code in KNOWN_CODES, (spec.name, binding.template, reply)
                assert status < 500, (spec.name, binding.template, reply)
                assert status == (200 if code == codes.SUCCESS and status == 200 else status), reply
                if code != codes.SUCCESS:
                    assert status in (http_status(code), 401), (spec.name, status, reply)
                if _numeric_path(spec, binding):
                    assert code == codes.CONN_BAD_REQUEST_FORMAT, (spec.name, reply)
                elif not headers and spec.auth_type is not AuthType.NO_AUTH:
                    assert code == codes.CONN_INVALID_REQUEST and status == 401, (
                        spec.name,
                        binding.template,
                        reply,
                    )
    assert seen == 2 * sum(len(s.bindings) for s in CATALOG.methods.values())


def _json_routable(spec: MethodSpec):
    """Path fields of a binding the official JSON channel can fill: it looks up a path
    variable's last segment at the top of the request, so nested ones (other than
    user_app_id) are out of its reach."""
    for binding in spec.bindings:
        names = [v for v in binding.variables if not v.startswith("user_app_id.")]
        if all("." not in v and _field_type(spec, v) == FieldDescriptor.TYPE_STRING for v in names):
            return names
    return None


def test_json_channel_every_unary_method(server, owner):
    """The official JSON channel reaches every unary method it can route to."""
    user_id, app_id, pat = owner
    stub = make_stub(server, "json")
    metadata = (("authorization", f"Key {pat}"),)
    called = 0
    for spec in CATALOG.methods.values():
        names = _json_routable(spec)
        if spec.client_streaming or spec.server_streaming or names is None:
            continue
        request = spec.input_type()
        if spec.has_user_app_id:
            request.user_app_id.user_id = user_id
            request.user_app_id.app_id = app_id
        for name in names:
            setattr(request, name, "x1")
        response = getattr(stub, spec.name)(request, metadata=metadata)
        _assert_status(spec, [response])
        called += 1
    assert called > 240
