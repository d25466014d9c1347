"""Model types as the API describes them, and their method signatures.

The clarifai SDK's `Model.predict(image=…)` and `clarifai model predict` build their Python
methods from `model_version.method_signatures` (or, failing that, from the JSON a
`_GET_SIGNATURES` predict answers): each runner offers one method, `predict`, taking one
image and answering a list, of concepts for a classifier, of JSON objects (one per colour)
for the colour model. The table of types lives with the runners (runners/registry.py).
"""

from __future__ import annotations

import json

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf import json_format

from scopegate.runners.registry import MODEL_TYPES, ModelType

PREDICT = "predict"
DataType = resources_pb2.ModelTypeField.DataType
_ITEM_TYPES = {"concept": DataType.CONCEPT, "json": DataType.JSON_DATA}


def method_signatures(model_type_id: str) -> list[resources_pb2.MethodSignature]:
    """The methods a model of this type answers; none for a type no runner serves."""
    found = MODEL_TYPES.get(model_type_id)
    return [_predict_signature(found)] if found else []


def _predict_signature(model_type: ModelType) -> resources_pb2.MethodSignature:
    item = resources_pb2.ModelTypeField(
        name="return_item", type=_ITEM_TYPES[model_type.output_item]
    )
    return resources_pb2.MethodSignature(
        name=PREDICT,
        method_type=resources_pb2.RunnerMethodType.UNARY_UNARY,
        description=f"{model_type.title}: {model_type.description}",
        input_fields=[
            resources_pb2.ModelTypeField(name="image", type=DataType.IMAGE, required=True)
        ],
        output_fields=[
            resources_pb2.ModelTypeField(name="return", type=DataType.LIST, type_args=[item])
        ],
    )


def signatures_json(model_type_id: str) -> str:
    """What a `_GET_SIGNATURES` predict answers in `data.text.raw`: {name: signature}, each
    signature as protobuf JSON (what the SDK parses back)."""
    return json.dumps(
        {sig.name: json_format.MessageToDict(sig) for sig in method_signatures(model_type_id)}
    )


def model_type_message(model_type: ModelType) -> resources_pb2.ModelType:
    return resources_pb2.ModelType(
        id=model_type.id,
        title=model_type.title,
        description=model_type.description,
        input_fields=list(model_type.input_fields),
        output_fields=list(model_type.output_fields),
        # No training runs here: weights are registered (see the README).
        trainable=False,
        creatable=True,
        method_signatures=method_signatures(model_type.id),
    )
