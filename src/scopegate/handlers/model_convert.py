"""Model records to protobuf messages."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import json_format

from scopegate.contract.status import C, invalid_argument
from scopegate.handlers.convert import timestamp
from scopegate.handlers.model_signatures import method_signatures
from scopegate.runners.registry import COLOR_RECOGNIZER
from scopegate.store.records import ModelRecord, ModelVersionRecord

DEFAULT_MAX_CONCEPTS = 20  # what a classifier answers unless output_config says otherwise

_VERSION_STATUS = {
    C.MODEL_TRAINED: "Model is trained and ready",
    C.MODEL_UNTRAINED: "Model not yet trained",
}


# Largest output_info PostModels keeps (as protobuf JSON).
MAX_OUTPUT_INFO_CHARS = 64 * 1024


def stored_output_info(model: resources_pb2.Model) -> str:
    """The output_info a PostModels request gives, as stored (protobuf JSON; "" if none)."""
    if not model.HasField("output_info"):
        return ""
    text = json_format.MessageToJson(model.output_info, indent=None, sort_keys=True)
    if len(text) > MAX_OUTPUT_INFO_CHARS:
        raise invalid_argument(
            f"model.output_info is {len(text)} characters as JSON; "
            f"the limit is {MAX_OUTPUT_INFO_CHARS}."
        )
    return text


def model_output_config(model: ModelRecord) -> resources_pb2.OutputConfig:
    """The output_config the model was created with (empty if none)."""
    info = resources_pb2.OutputInfo()
    if model.output_info:
        json_format.Parse(model.output_info, info, ignore_unknown_fields=True)
    return info.output_config


def output_info(
    model: ModelRecord, version: ModelVersionRecord | None, *, with_concepts: bool = True
) -> resources_pb2.OutputInfo:
    """What PostModels was given, with what the server knows filled in where not given."""
    info = resources_pb2.OutputInfo()
    if model.output_info:
        json_format.Parse(model.output_info, info, ignore_unknown_fields=True)
    if model.model_type_id == COLOR_RECOGNIZER:
        info.message = (
            info.message or "Answers data.colors: raw_hex, the nearest W3C colour and its density."
        )
        return info
    if not info.output_config.max_concepts:
        info.output_config.max_concepts = DEFAULT_MAX_CONCEPTS
    if version is None:
        info.message = info.message or "No weights registered yet."
        return info
    info.message = (
        info.message or f"Answers data.concepts: {len(version.labels)} labels, highest value first."
    )
    if with_concepts:
        del info.data.concepts[:]  # the registered labels are what the model answers
        for ident, name in version.labels:
            info.data.concepts.append(
                resources_pb2.Concept(
                    id=ident, name=name, value=1.0, app_id=model.app_id, user_id=model.user_id
                )
            )
    return info


def version_message(
    model: ModelRecord, version: ModelVersionRecord, *, with_concepts: bool = True
) -> resources_pb2.ModelVersion:
    return resources_pb2.ModelVersion(
        id=version.version_id,
        created_at=timestamp(version.created_at),
        status=status_pb2.Status(
            code=version.status_code, description=_VERSION_STATUS.get(version.status_code, "")
        ),
        active_concept_count=len(version.labels),
        description=version.description,
        app_id=model.app_id,
        user_id=model.user_id,
        visibility=resources_pb2.Visibility(gettable=model.app_visibility),
        output_info=output_info(model, version, with_concepts=with_concepts),
        # What the clarifai SDK builds `Model.predict(image=…)` from.
        method_signatures=method_signatures(model.model_type_id),
    )


def model_message(
    model: ModelRecord,
    version: ModelVersionRecord | None,
    *,
    with_concepts: bool = True,
    version_count: int | None = None,
) -> resources_pb2.Model:
    message = resources_pb2.Model(
        id=model.model_id,
        name=model.name,
        display_name=model.name,
        app_id=model.app_id,
        user_id=model.user_id,
        model_type_id=model.model_type_id,
        description=model.description,
        notes=model.notes,
        created_at=timestamp(model.created_at),
        modified_at=timestamp(model.modified_at),
        # A model is exactly as visible as its app (see README, Models and predict).
        visibility=resources_pb2.Visibility(gettable=model.app_visibility),
        output_info=output_info(model, version, with_concepts=with_concepts),
    )
    if version is not None:
        message.model_version.CopyFrom(version_message(model, version, with_concepts=with_concepts))
    if version_count is not None:
        message.version_count = version_count
    return message
