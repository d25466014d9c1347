"""The request checks of the one request path that need no server."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from scopegate.dispatch import nul_field


def test_nul_field_finds_nul_characters_anywhere_and_names_the_field():
    clean = service_pb2.PostInputsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="me", app_id="a"),
        inputs=[
            resources_pb2.Input(
                id="x", data=resources_pb2.Data(image=resources_pb2.Image(base64=b"\0\0"))
            )
        ],
    )
    clean.inputs[0].data.metadata.update({"k": {"list": ["a", 1, None]}})
    assert nul_field(clean) is None  # bytes may hold NUL: only text is checked

    def with_metadata(value) -> service_pb2.PostInputsRequest:
        request = service_pb2.PostInputsRequest()
        request.CopyFrom(clean)
        request.inputs[0].data.metadata.update(value)
        return request

    assert nul_field(with_metadata({"k": {"list": ["a", "b\0"]}})) == (
        "inputs[0].data.metadata.fields['k'].struct_value.fields['list']"
        ".list_value.values[1].string_value"
    )
    assert nul_field(with_metadata({"bad\0key": 1})) == (
        "inputs[0].data.metadata.fields['bad\\x00key']"
    )
    assert nul_field(service_pb2.DeleteInputsRequest(ids=["a", "b\0"])) == "ids[1]"
    assert (
        nul_field(service_pb2.GetInputRequest(user_app_id=resources_pb2.UserAppIDSet(app_id="\0")))
        == "user_app_id.app_id"
    )
    keys = service_pb2.PostKeysRequest(keys=[resources_pb2.Key(scopes=["All", "x\0"])])
    assert nul_field(keys) == "keys[0].scopes[1]"
