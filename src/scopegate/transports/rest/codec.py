"""JSON ⇄ protobuf exactly as clarifai_grpc's converters do it, with their extension
lookups cached per message type.

Clarifai's REST API (and the official JSON channel reading it) bends proto3 JSON in two
places: fields marked `cl_show_if_empty` are written even when empty (a concept's
`value` of 0 must not read as its default 1.0), and fields marked `cl_default_float` take
that default when a request leaves them out. The official converters find those fields by
reading every field's options of every message on every call: about a fifth of a cheap
request's CPU. The fields never change, so they are looked up once per descriptor here.
The printer also decides once per field how its values convert (most are written as they
are), where the official one decides again for every value; timestamps are written as
`Timestamp.ToJsonString` writes them without building a datetime for each; anything else
unusual (maps, extensions, other well-known types, bytes, 64-bit integers, floats) still
goes through the official code. `tests/test_rest_json.py` holds the two equal on every
message type of the catalog, empty and filled at random, and on timestamps of every kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import cache
from typing import Any

from clarifai_grpc.channel.custom_converters.custom_dict_to_message import _CustomParser
from clarifai_grpc.channel.custom_converters.custom_message_to_dict import _CustomPrinter
from clarifai_grpc.grpc.api.utils import extensions_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message


class _Memo(dict):
    """`memo[key]` is `compute(key)`, worked out on first use. Cheaper per hit than
    `functools.cache`, which builds, hashes and compares a tuple key on every call: these
    lookups run for every field of every message an answer prints."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self._compute(key)
        return value


def _shown_if_empty_fields(descriptor: Descriptor) -> tuple[tuple[str, FieldDescriptor], ...]:
    """The fields `_CustomPrinter` adds when empty: marked, not a singular message, not in
    a oneof."""
    shown = []
    for field in descriptor.fields:
        if not field.GetOptions().Extensions[extensions_pb2.cl_show_if_empty]:
            continue
        singular_message = (
            not field.is_repeated and field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
        )
        if singular_message or field.containing_oneof:
            continue
        shown.append((field.name, field))
    return tuple(shown)


# By message class: `type(message)` costs less than `message.DESCRIPTOR`, an attribute
# lookup through upb's field names first.
_shown_if_empty = _Memo(lambda message_type: _shown_if_empty_fields(message_type.DESCRIPTOR))


@cache
def _default_floats(descriptor: Descriptor) -> tuple[tuple[str, float], ...]:
    defaults = []
    for field in descriptor.fields:
        default = field.GetOptions().Extensions[extensions_pb2.cl_default_float]
        if default:
            defaults.append((field.name, default))
    return tuple(defaults)


# How a field's value becomes JSON, worked out once per field (see `_Printer`): as it is, a
# message printed by the fast path here, one printed by the official code (well-known
# types, wrappers), converted by the official code value by value, or the whole message by
# the official code (maps, extensions).
_AS_IS, _MESSAGE, _SPECIAL_MESSAGE, _CONVERTED, _OFFICIAL, _TIMESTAMP = range(6)
# Values the official `_FieldToJsonObject` returns unchanged when enums are written as
# numbers: enums, bools, 32-bit integers, strings (bytes are base64, 64-bit integers strings,
# floats special-cased).
_UNCHANGED = frozenset(
    {
        FieldDescriptor.CPPTYPE_ENUM,
        FieldDescriptor.CPPTYPE_BOOL,
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_UINT32,
    }
)


def _plan_field(field: FieldDescriptor) -> tuple[str, int, bool]:
    """(JSON name, how its value converts, whether it is repeated)."""
    if field.is_extension or json_format._IsMapEntry(field):
        kind = _OFFICIAL
    elif field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            kind = _TIMESTAMP
        else:
            kind = _MESSAGE if _is_regular_message(field.message_type) else _SPECIAL_MESSAGE
    elif field.cpp_type in _UNCHANGED or (
        field.cpp_type == FieldDescriptor.CPPTYPE_STRING
        and field.type != FieldDescriptor.TYPE_BYTES
    ):
        kind = _AS_IS
    else:
        kind = _CONVERTED
    return field.name, kind, field.is_repeated


def _is_regular_message(descriptor: Descriptor) -> bool:
    """Neither a wrapper nor another well-known type with its own JSON form."""
    return (
        not json_format._IsWrapperMessage(descriptor)
        and descriptor.full_name not in json_format._WKTJSONMETHODS
    )


# The range `Timestamp.ToJsonString` accepts: years 1 to 9999.
_FIRST_SECOND, _LAST_SECOND = -62135596800, 253402300799
_EPOCH = date(1970, 1, 1)
_DAY = 86400


def _day_text(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat()


# "YYYY-MM-DD" by days since the epoch: the answers of a page mostly share a few days.
_days = _Memo(_day_text)


def timestamp_json(timestamp: Any) -> str:
    """`timestamp.ToJsonString()`, the same text (3, 6 or 9 fractional digits, or none, as
    the value needs), at about half the cost of the official path (its dispatch and a
    datetime per value). Out of range, the official method's own error."""
    seconds, nanos = timestamp.seconds, timestamp.nanos
    if not (_FIRST_SECOND <= seconds <= _LAST_SECOND and 0 <= nanos < 1_000_000_000):
        return timestamp.ToJsonString()
    days, second = divmod(seconds, _DAY)
    if len(_days) > 4096:
        _days.clear()  # bounded: a long-running server meets ever new days
    day = _days[days]
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    clock = f"{day}T{hour:02d}:{minute:02d}:{second:02d}"
    if not nanos:
        return clock + "Z"
    if not nanos % 1_000_000:
        return f"{clock}.{nanos // 1_000_000:03d}Z"
    if not nanos % 1000:
        return f"{clock}.{nanos // 1000:06d}Z"
    return f"{clock}.{nanos:09d}Z"


_field_plan = _Memo(_plan_field)
_is_regular = _Memo(lambda message_type: _is_regular_message(message_type.DESCRIPTOR))


class _Printer(_CustomPrinter):
    """The official printer's answers, with its per-field decisions made once per field
    rather than on every value: most of a small response's cost otherwise."""

    def _MessageToJsonObject(self, message):
        if _is_regular[type(message)]:
            return self._RegularMessageToJsonObject(message, {})
        return super()._MessageToJsonObject(message)

    def _RegularMessageToJsonObject(self, message, js):
        plans = _field_plan
        try:
            for field, value in message.ListFields():
                name, kind, repeated = plans[field]
                if kind == _AS_IS:
                    # A slice copies in C; list() iterates until an IndexError, 3x slower.
                    js[name] = value[:] if repeated else value
                elif kind == _MESSAGE:  # straight here: one Python frame less per message
                    convert = self._RegularMessageToJsonObject
                    js[name] = (
                        [convert(item, {}) for item in value] if repeated else convert(value, {})
                    )
                elif kind == _TIMESTAMP:
                    js[name] = (
                        [timestamp_json(item) for item in value]
                        if repeated
                        else timestamp_json(value)
                    )
                elif kind == _SPECIAL_MESSAGE:
                    convert = self._MessageToJsonObject
                    js[name] = [convert(item) for item in value] if repeated else convert(value)
                elif kind == _CONVERTED:
                    convert = self._FieldToJsonObject
                    js[name] = (
                        [convert(field, item) for item in value[:]]
                        if repeated
                        else convert(field, value)
                    )
                else:  # maps and extensions: the official code, for the whole message
                    js.clear()
                    js = json_format._Printer._RegularMessageToJsonObject(self, message, js)
                    break
        except ValueError as e:
            raise json_format.SerializeToJsonError(
                f"Failed to serialize {field.name} field: {e}."
            ) from e
        for name, field in _shown_if_empty[type(message)]:
            if name in js:
                continue
            if json_format._IsMapEntry(field):
                js[name] = {}
            elif field.is_repeated:
                js[name] = []
            else:
                js[name] = self._FieldToJsonObject(field, field.default_value)
        return js


# Holds only its settings, so one serves every call.
_PRINTER = _Printer(
    including_default_value_fields=False,
    preserving_proto_field_name=True,
    use_integers_for_enums=True,
    ignore_show_empty=False,
)


# Base64 as proto3 JSON allows it: standard or URL-safe alphabet, padding optional.
# json_format's decoder drops every other character, so "@@" would read as no bytes at all.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


@cache
def _bytes_fields(descriptor: Descriptor) -> tuple[str, ...]:
    names: list[str] = []
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_BYTES:
            names.extend({field.name, field.json_name})
    return tuple(names)


def _check_base64(js: dict, descriptor: Descriptor) -> None:
    for name in _bytes_fields(descriptor):
        value = js.get(name)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not (
                _BASE64.fullmatch(text) and len(text.rstrip("=")) % 4 != 1
            ):
                raise json_format.ParseError(f"Failed to parse {name} field: not valid base64.")


class _Parser(_CustomParser):
    def _ConvertFieldValuePair(self, js, message, path):
        for name, default in _default_floats(message.DESCRIPTOR):
            if name not in js:
                js[name] = default
        _check_base64(js, message.DESCRIPTOR)
        json_format._Parser._ConvertFieldValuePair(self, js, message, path)


def message_to_dict(message: Message) -> dict:
    """`protobuf_to_dict(message, use_integers_for_enums=True)`: proto field names, enums
    as numbers, `cl_show_if_empty` fields always present."""
    return _PRINTER._MessageToJsonObject(message)


def dict_to_message(message_type: type[Message], data: dict) -> Message:
    """`dict_to_protobuf(message_type, data)`: absent `cl_default_float` fields take their
    default. Raises json_format.ParseError on a shape that does not fit."""
    message = message_type()
    _Parser(False, None, 100).ConvertMessage(data, message, path="")
    return message


@cache
def _path_plan(
    message_type: type[Message], names: tuple[str, ...]
) -> tuple[tuple[tuple[str, ...], str], ...] | None:
    """For each dotted name, the message fields that lead to it and the string field it
    sets; None when one is not a plain string field or a `cl_default_float` default would
    apply on the way. Per route shape, so worked out once."""
    if _default_floats(message_type.DESCRIPTOR):
        return None
    plan = []
    for dotted in names:
        *parents, leaf = dotted.split(".")
        descriptor = message_type.DESCRIPTOR
        for name in parents:
            field = descriptor.fields_by_name.get(name)
            if field is None or field.is_repeated or field.message_type is None:
                return None
            descriptor = field.message_type
            if _default_floats(descriptor):
                return None
        field = descriptor.fields_by_name.get(leaf)
        if field is None or field.is_repeated or field.type != FieldDescriptor.TYPE_STRING:
            return None
        plan.append((tuple(parents), leaf))
    return tuple(plan)


def message_from_path(message_type: type[Message], values: Mapping[str, str]) -> Message | None:
    """The request of a call whose only input is its path (no body, no query), built
    without the JSON parser (~35x cheaper); None when a value is not a plain string field
    or a `cl_default_float` default would apply, which the parser then handles."""
    plan = _path_plan(message_type, tuple(values))
    if plan is None:
        return None
    message = target = message_type()
    reached: tuple[str, ...] = ()
    for (parents, leaf), value in zip(plan, values.values(), strict=True):
        if parents != reached:  # siblings (user_app_id.user_id, .app_id) share one walk
            target = message
            for name in parents:
                target = getattr(target, name)
            reached = parents
        setattr(target, leaf, value)
    return message
