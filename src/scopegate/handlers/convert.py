"""Records to protobuf messages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from scopegate.store.records import AppRecord, KeyRecord, KeyResources, UserRecord


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


# Deepest metadata accepted, in objects and lists one inside another ({"a": 1} is 1). Well
# under what protobuf decodes (its recursion limit ends a Struct at about 32 levels), so
# whatever is stored can be answered back by GetInput and ListInputs over both transports.
MAX_METADATA_DEPTH = 20


def struct_depth(value: struct_pb2.Struct) -> int:
    """How deep objects and lists nest in `value`, walked without recursion (a deep one
    must be refused, not overflow the stack)."""
    deepest = 0
    pending: list[tuple[Iterable[struct_pb2.Value], int]] = [(value.fields.values(), 1)]
    while pending:
        children, depth = pending.pop()
        deepest = max(deepest, depth)
        for child in children:
            kind = child.WhichOneof("kind")
            if kind == "struct_value":
                pending.append((child.struct_value.fields.values(), depth + 1))
            elif kind == "list_value":
                pending.append((child.list_value.values, depth + 1))
    return deepest


def struct_dict(value: struct_pb2.Struct, where: str) -> dict:
    """A Struct (metadata) as a JSON object; ValueError naming `where` when it nests deeper
    than MAX_METADATA_DEPTH or holds what JSON cannot (NaN or an infinity, which gRPC
    callers can send)."""
    depth = struct_depth(value)
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(
            f"{where} nests {depth} levels of objects and lists; the limit is {MAX_METADATA_DEPTH}."
        )
    try:
        return json_format.MessageToDict(value)
    except ValueError:
        raise ValueError(
            f"{where} holds a number JSON cannot represent (NaN or infinity)."
        ) from None


def app_message(app: AppRecord) -> resources_pb2.App:
    return resources_pb2.App(
        id=app.app_id,
        name=app.name,
        user_id=app.user_id,
        description=app.description,
        created_at=timestamp(app.created_at),
        modified_at=timestamp(app.modified_at),
        visibility=resources_pb2.Visibility(gettable=app.visibility),
    )


def user_message(user: UserRecord) -> resources_pb2.User:
    return resources_pb2.User(
        id=user.user_id,
        primary_email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        created_at=timestamp(user.created_at),
    )


def key_message(key: KeyRecord, *, secret: str | None = None) -> resources_pb2.Key:
    """A key as the API shows it: the secret only when just created, else the public id."""
    message = resources_pb2.Key(
        id=secret or key.public_id,
        type=key.kind,
        description=key.description,
        scopes=list(key.scopes),
        endpoints=list(key.endpoints),
        created_at=timestamp(key.created_at),
    )
    if key.expires_at:
        message.expires_at.CopyFrom(timestamp(key.expires_at))
    if key.app_id:
        message.apps.append(resources_pb2.App(id=key.app_id, user_id=key.app_user_id or ""))
    if key.resources is not None:
        message.apps.extend(resource_apps(key.resources))
    return message


# In `Key.apps` of a fine-grained PAT, an app id no app can have: the whole organization.
WHOLE_ORG = "*"


def resource_apps(resources: KeyResources) -> list[resources_pb2.App]:
    """A fine-grained PAT's limits as `Key.apps`: its apps, and `{user_id: ORG, id: "*"}`
    for each whole organization (what PostKeys and PatchKeys read back)."""
    named = [resources_pb2.App(id=app_id, user_id=owner) for owner, app_id in resources.apps]
    return named + [resources_pb2.App(id=WHOLE_ORG, user_id=org) for org in resources.orgs]
