"""Model records to protobuf messages."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2

from scopegate.handlers.convert import timestamp
from scopegate.runners.registry import COLOR_RECOGNIZER
from scopegate.status import C
from scopegate.store.records import ModelRecord, ModelVersionRecord

DEFAULT_MAX_CONCEPTS = 20  # what a classifier answers unless output_config says otherwise

_VERSION_STATUS = {
    C.MODEL_TRAINED: "Model is trained and ready",
    C.MODEL_UNTRAINED: "Model not yet trained",
}


def output_info(
    model: ModelRecord, version: ModelVersionRecord | None, *, with_concepts: bool = True
) -> resources_pb2.OutputInfo:
    info = resources_pb2.OutputInfo()
    if model.model_type_id == COLOR_RECOGNIZER:
        info.message = "Answers data.colors: raw_hex, the nearest W3C colour and its density."
        return info
    info.output_config.max_concepts = DEFAULT_MAX_CONCEPTS
    if version is None:
        info.message = "No weights registered yet."
        return info
    info.message = f"Answers data.concepts: {len(version.labels)} labels, highest value first."
    if with_concepts:
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
