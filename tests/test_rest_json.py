"""The REST codec's cached converters answer exactly as the official clarifai_grpc ones, and
the path-only fast path builds exactly the message the JSON parser builds."""

from __future__ import annotations

import json
import random

import pytest
from clarifai_grpc.channel.custom_converters.custom_dict_to_message import dict_to_protobuf
from clarifai_grpc.channel.custom_converters.custom_message_to_dict import protobuf_to_dict
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from scopegate.contract.catalog import load_catalog
from scopegate.transports.rest.codec import (
    dict_to_message,
    message_from_path,
    message_to_dict,
    timestamp_json,
)
from scopegate.transports.rest.errors import encode

CATALOG = load_catalog()
MESSAGE_TYPES = sorted(
    {t for spec in CATALOG.methods.values() for t in (spec.input_type, spec.output_type)},
    key=lambda t: t.DESCRIPTOR.full_name,
)


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=lambda t: t.DESCRIPTOR.name)
def test_every_empty_message_converts_as_the_official_converter(message_type):
    message = message_type()
    assert message_to_dict(message) == protobuf_to_dict(message, use_integers_for_enums=True)
    assert dict_to_message(message_type, {}) == dict_to_protobuf(message_type, {})


FILLED = [
    service_pb2.MultiConceptResponse(
        concepts=[resources_pb2.Concept(id="cat", name="Cat", value=0.0)]
    ),
    service_pb2.MultiOutputResponse(
        outputs=[
            resources_pb2.Output(
                data=resources_pb2.Data(
                    concepts=[resources_pb2.Concept(id="dog", value=0.25)],
                    colors=[resources_pb2.Color(raw_hex="#ffffff", value=0.0)],
                )
            )
        ]
    ),
    service_pb2.MultiKeyResponse(
        keys=[resources_pb2.Key(id="k", scopes=["All"], apps=[resources_pb2.App(id="a")])]
    ),
    service_pb2.MultiInputResponse(
        inputs=[
            resources_pb2.Input(
                id="i",
                data=resources_pb2.Data(
                    image=resources_pb2.Image(url="http://127.0.0.1/x.png"),
                    concepts=[resources_pb2.Concept(id="c", value=0.0)],
                ),
            )
        ]
    ),
]


@pytest.mark.parametrize("message", FILLED, ids=lambda m: m.DESCRIPTOR.name)
def test_filled_messages_convert_as_the_official_converter(message):
    ours = message_to_dict(message)
    assert ours == protobuf_to_dict(message, use_integers_for_enums=True)
    assert dict_to_message(type(message), ours) == dict_to_protobuf(type(message), ours)


def test_a_concept_without_value_takes_its_default_as_the_official_parser():
    body = {"inputs": [{"data": {"concepts": [{"id": "cat"}]}}]}
    ours = dict_to_message(service_pb2.PostInputsRequest, dict(body))
    assert ours == dict_to_protobuf(service_pb2.PostInputsRequest, dict(body))
    assert ours.inputs[0].data.concepts[0].value == 1.0


def test_a_shape_that_does_not_fit_is_refused_as_by_the_official_parser():
    with pytest.raises(json_format.ParseError):
        dict_to_message(service_pb2.GetAppRequest, {"user_app_id": "not an object"})


def _nest(values: dict[str, str]) -> dict:
    data: dict = {}
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = data
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return data


BINDINGS = [
    (spec, binding)
    for spec in sorted(CATALOG.methods.values(), key=lambda s: s.name)
    for binding in spec.bindings
    if binding.variables
]


def test_the_path_fast_path_covers_every_binding_and_builds_the_parsers_message():
    built = 0
    for spec, binding in BINDINGS:
        values = {name: f"v{index}" for index, name in enumerate(binding.variables)}
        fast = message_from_path(spec.input_type, values)
        if fast is None:
            continue  # a non-string field: the parser's job
        built += 1
        assert fast == dict_to_protobuf(spec.input_type, _nest(values)), spec.name
    # Every templated route of the contract names only string ids.
    assert built == len(BINDINGS)


def test_the_path_fast_path_declines_what_is_not_a_plain_string_field():
    # No route of the contract names such a field today; the parser would decide these.
    assert message_from_path(service_pb2.ListAppsRequest, {"page": "2"}) is None
    assert message_from_path(service_pb2.ListAppsRequest, {"no_such_field": "x"}) is None
    assert message_from_path(service_pb2.GetAppRequest, {"user_app_id": "x"}) is None


# ---------------------------------------------------------------- filled at random

_STRINGS = ["", "a", "Ok", "ünïcödé ✓", "0", 'with "quotes" and \\']
_INT64 = [0, 1, -1, 2**40, -(2**62)]


def _fill(message, rng: random.Random, depth: int = 0) -> None:
    """Set a random selection of `message`'s fields, of every kind, nested to depth 3."""
    descriptor = message.DESCRIPTOR
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp" or name == "google.protobuf.Duration":
        message.seconds, message.nanos = rng.randrange(0, 2**31), rng.randrange(0, 10**9)
        return
    if name == "google.protobuf.Struct":
        message.update({"a": 1.5, "b": "x", "c": [True, None], "d": {}})
        return
    if name in ("google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any"):
        return  # left empty: their JSON forms are the official code's in both printers
    for field in descriptor.fields:
        if rng.random() < 0.45:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for index in range(rng.randrange(1, 3)):
                key = (
                    _scalar(key_field, rng)
                    if key_field.type != key_field.TYPE_STRING
                    else f"k{index}"
                )
                target = getattr(message, field.name)
                if value_field.message_type is not None:
                    if depth < 3:
                        _fill(target[key], rng, depth + 1)
                else:
                    target[key] = _scalar(value_field, rng)
            continue
        if field.message_type is not None:
            if depth >= 3:
                continue
            if field.is_repeated:
                for _ in range(rng.randrange(0, 3)):
                    _fill(getattr(message, field.name).add(), rng, depth + 1)
            else:
                child = getattr(message, field.name)
                child.SetInParent()
                _fill(child, rng, depth + 1)
            continue
        if field.is_repeated:
            getattr(message, field.name).extend(
                _scalar(field, rng) for _ in range(rng.randrange(0, 3))
            )
        else:
            setattr(message, field.name, _scalar(field, rng))


def _scalar(field, rng: random.Random):
    kind = field.cpp_type
    if field.type == field.TYPE_BYTES:
        return rng.randbytes(rng.randrange(0, 5))
    if kind == field.CPPTYPE_STRING:
        return rng.choice(_STRINGS)
    if kind == field.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if kind == field.CPPTYPE_ENUM:
        return rng.choice(field.enum_type.values).number
    if kind in (field.CPPTYPE_FLOAT, field.CPPTYPE_DOUBLE):
        return rng.choice([0.0, 0.25, -3.5, 1e20, 0.1, float("inf"), float("-inf")])
    if kind in (field.CPPTYPE_INT64, field.CPPTYPE_UINT64):
        return abs(rng.choice(_INT64)) if kind == field.CPPTYPE_UINT64 else rng.choice(_INT64)
    if kind == field.CPPTYPE_UINT32:
        return rng.randrange(0, 2**32)
    return rng.randrange(-(2**31), 2**31)


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=lambda t: t.DESCRIPTOR.name)
def test_messages_filled_at_random_convert_as_the_official_converter(message_type):
    rng = random.Random(message_type.DESCRIPTOR.full_name)
    for _ in range(4):
        message = message_type()
        _fill(message, rng)
        assert message_to_dict(message) == protobuf_to_dict(message, use_integers_for_enums=True), (
            message
        )


# What the printer hands the encoder: proto3 JSON writes 64-bit integers as strings and
# non-finite floats as "NaN" and "Infinity".
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_the_answer_encoder_writes_what_json_dumps_writes(value):
    """Byte for byte, but for how a float's exponent is spelled (`1e-7` against `1e-07`):
    the same text for everything else, and the same value read back always."""
    written = encode(value)
    official = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(written) == json.loads(official)
    if not _has_float(value):
        assert written == official.encode()


def _has_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    return isinstance(value, list) and any(_has_float(item) for item in value)


def test_the_answer_encoder_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"a": object()})
    with pytest.raises(TypeError, match="64-bit"):
        encode({"a": 2**64})


@given(
    seconds=st.integers(-62135596800, 253402300799),
    nanos=st.one_of(
        st.just(0),
        st.integers(0, 999).map(lambda ms: ms * 1_000_000),
        st.integers(0, 999_999).map(lambda us: us * 1000),
        st.integers(0, 999_999_999),
    ),
)
def test_timestamps_print_as_the_official_method_writes_them(seconds, nanos):
    """The printer's own timestamp text: that of `Timestamp.ToJsonString`, for every valid
    value, with 0, 3, 6 and 9 fractional digits."""
    stamp = Timestamp(seconds=seconds, nanos=nanos)
    assert timestamp_json(stamp) == stamp.ToJsonString()
    app = resources_pb2.App(id="a", created_at=stamp, modified_at=stamp)
    assert message_to_dict(app) == protobuf_to_dict(app, use_integers_for_enums=True)


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(-62135596801, 0), (253402300800, 0), (0, -1), (0, 10**9)]
)
def test_a_timestamp_out_of_range_fails_as_with_the_official_printer(seconds, nanos):
    app = resources_pb2.App(id="a", created_at=Timestamp(seconds=seconds, nanos=nanos))
    with pytest.raises(json_format.SerializeToJsonError) as official:
        protobuf_to_dict(app, use_integers_for_enums=True)
    with pytest.raises(json_format.SerializeToJsonError) as ours:
        message_to_dict(app)
    assert str(ours.value) == str(official.value)
