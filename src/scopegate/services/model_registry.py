"""Creating models and registering their weights: shared by the API handlers, the CLI and
the seeding of `clarifai/main`. Each runs in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

from sqlalchemy import Connection

from scopegate.contract.status import ApiError, C, invalid_argument
from scopegate.runners.base import RunnerError
from scopegate.runners.registry import MODEL_TYPES, VISUAL_CLASSIFIER
from scopegate.services.checks import MAX_NAME_LENGTH, validate_id
from scopegate.store import models
from scopegate.store.records import AppRecord, ModelRecord, ModelVersionRecord

if TYPE_CHECKING:
    from scopegate.runners import onnx_classifier

MAX_WEIGHTS_BYTES = 512 * 1024 * 1024


def validate_model_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise invalid_argument(f"A model's name has at most {MAX_NAME_LENGTH} characters.")
    return name


def new_version_id() -> str:
    return uuid.uuid4().hex


def model_type(model_type_id: str):
    found = MODEL_TYPES.get(model_type_id)
    if found is None:
        raise invalid_argument(
            f"Unsupported model_type_id '{model_type_id}': scopegate runs "
            + ", ".join(f"'{t.id}' ({t.description})" for t in MODEL_TYPES.values())
        )
    return found


class ModelText(TypedDict, total=False):
    """A new model's texts, each "" unless given (a model without a name shows its id)."""

    name: str
    description: str
    notes: str
    output_info: str


def create_model(
    conn: Connection,
    app: AppRecord,
    model_id: str,
    *,
    model_type_id: str,
    **text: Unpack[ModelText],
) -> ModelRecord:
    """A new model in `app`. A built-in type gets a trained version at once; a classifier
    waits for weights (`scopegate models register`). `output_info` is kept as given
    (protobuf JSON) and answered back."""
    validate_id("model id", model_id)
    validate_model_name(text.get("name", ""))
    kind = model_type(model_type_id)
    if models.get(conn, app.pk, model_id) is not None:
        raise ApiError(
            C.CONN_INVALID_REQUEST,
            "Invalid request",
            f"Model '{model_id}' already exists in app '{app.app_id}'.",
        )
    pk = models.create(conn, app.pk, model_id, model_type_id=kind.id, **text)
    if kind.builtin:
        models.create_version(
            conn, pk, new_version_id(), status_code=C.MODEL_TRAINED, description="Built in"
        )
    created = models.get(conn, app.pk, model_id)
    assert created is not None  # created in this transaction
    return created


@dataclass(frozen=True, slots=True)
class Weights:
    """Checked ONNX weights, ready to store: `prepare_weights` runs them once first."""

    onnx: bytes
    labels: list[onnx_classifier.Label]
    preprocessing: onnx_classifier.Preprocessing


def prepare_weights(
    onnx_bytes: bytes,
    labels_text: str,
    *,
    input_size: tuple[int, int] | None = None,
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
) -> Weights:
    """Parse the labels, settle the preprocessing and run the model once on a grey image,
    so bad weights fail here with a reason and never on a user's predict."""
    # Imported here: onnxruntime and NumPy are for registering and serving weights, not for
    # every command that imports this module.
    from scopegate.runners import onnx_classifier

    if len(onnx_bytes) > MAX_WEIGHTS_BYTES:
        raise RunnerError(f"The model file is larger than {MAX_WEIGHTS_BYTES} bytes.")
    labels = onnx_classifier.parse_labels(labels_text)
    layout, height, width = onnx_classifier.layout_of(onnx_bytes)
    if input_size is not None:
        if (height and height != input_size[0]) or (width and width != input_size[1]):
            raise RunnerError(
                f"--input-size {input_size[0]}x{input_size[1]} does not match the model's "
                f"fixed input {height}x{width}."
            )
        height, width = input_size
    default = onnx_classifier.DEFAULT_INPUT_SIZE
    preprocessing = onnx_classifier.Preprocessing(
        height=height or default,
        width=width or default,
        mean=mean or (0.0, 0.0, 0.0),
        std=std or (1.0, 1.0, 1.0),
        layout=layout,
    )
    if any(s == 0 for s in preprocessing.std):
        raise RunnerError("--std values must not be 0.")
    onnx_classifier.check(onnx_bytes, labels, preprocessing)
    return Weights(onnx_bytes, labels, preprocessing)


def register_weights(
    conn: Connection,
    app: AppRecord,
    model_id: str,
    weights: Weights,
    *,
    name: str = "",
    description: str = "",
) -> tuple[ModelRecord, ModelVersionRecord]:
    """A new trained version of classifier `model_id` (created when missing) serving
    `weights`; it becomes the model's default version."""
    model = models.get(conn, app.pk, model_id)
    if model is None:
        model = create_model(conn, app, model_id, model_type_id=VISUAL_CLASSIFIER, name=name)
    elif model.model_type_id != VISUAL_CLASSIFIER:
        raise invalid_argument(
            f"Model '{model_id}' is a '{model.model_type_id}' model; weights can be registered "
            f"only for '{VISUAL_CLASSIFIER}' models."
        )
    version = models.create_version(
        conn,
        model.pk,
        new_version_id(),
        status_code=C.MODEL_TRAINED,
        description=description or "Registered ONNX weights",
    )
    models.store_weights(
        conn,
        version.pk,
        weights=weights.onnx,
        labels=[(label.id, label.name) for label in weights.labels],
        preprocessing=weights.preprocessing.to_json(),
    )
    stored = models.get_version(conn, model.pk, version.version_id)
    assert stored is not None  # created in this transaction
    return model, stored
