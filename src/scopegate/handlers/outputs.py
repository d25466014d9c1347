"""PostModelOutputs: predict with a model's runner on a batch of images (bytes or URLs).

Inputs that cannot be had (bad URL, undecodable or oversized image) fail on their own
output; the others are still predicted. The top status is SUCCESS, MIXED_STATUS when some
failed, or FAILURE when all did.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2
from PIL import Image

from scopegate.context import RequestContext
from scopegate.contract.status import ApiError, C, invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.convert import timestamp
from scopegate.handlers.model_convert import (
    DEFAULT_MAX_CONCEPTS,
    model_message,
    model_output_config,
)
from scopegate.handlers.models import find_model, find_version
from scopegate.handlers.target_app import target_app
from scopegate.media import images as media
from scopegate.media.settings import MediaSettings
from scopegate.runners.base import Prediction, RunnerError
from scopegate.store.records import ModelRecord, now

MAX_INPUTS = 128  # per request, as the Clarifai API
FETCH_WORKERS = 8

_INPUT_DESCRIPTIONS = {
    C.INPUT_DOWNLOAD_FAILED: "Download failed",
    C.INPUT_INVALID_URL: "Invalid URL",
    C.INPUT_OVER_LIMIT: "Input is over the limit",
    C.INPUT_UNSUPPORTED_FORMAT: "Unsupported input format",
    C.INPUT_INVALID_ARGUMENT: "Invalid input",
}


@dataclass(slots=True)
class _Loaded:
    image: Image.Image | None = None
    error: media.MediaError | None = None


def _load(limits: MediaSettings, item: resources_pb2.Input) -> _Loaded:
    image = item.data.image
    try:
        if image.base64:
            data = image.base64
        elif image.url:
            data = media.fetch_image(
                image.url,
                max_bytes=limits.max_image_bytes,
                timeout=limits.fetch_timeout,
                allow_private=limits.fetch_private_hosts,
                connect_to=limits.fetch_connect_to,
            )
        else:
            raise media.MediaError(
                C.INPUT_INVALID_ARGUMENT,
                "This input has no image: set data.image.base64 or data.image.url.",
            )
        media.decode_image(
            data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels
        )
        return _Loaded(image=media.open_image(data))
    except media.MediaError as error:
        return _Loaded(error=error)


def _load_all(limits: MediaSettings, inputs) -> list[_Loaded]:
    load = partial(_load, limits)
    if sum(1 for i in inputs if i.data.image.url and not i.data.image.base64) <= 1:
        return [load(i) for i in inputs]
    # URLs are fetched side by side: a batch waits for its slowest URL, not their sum.
    with ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="fetch") as pool:
        return list(pool.map(load, inputs))


def _fill(data: resources_pb2.Data, prediction: Prediction, config) -> None:
    limit = config.max_concepts or DEFAULT_MAX_CONCEPTS
    wanted = {c.id for c in config.select_concepts} | {c.name for c in config.select_concepts}
    for concept in prediction.concepts:
        if wanted and concept.id not in wanted and concept.name not in wanted:
            continue
        if concept.value < config.min_value or len(data.concepts) >= limit:
            continue
        data.concepts.append(
            resources_pb2.Concept(id=concept.id, name=concept.name, value=concept.value)
        )
    for color in prediction.colors:
        data.colors.append(
            resources_pb2.Color(
                raw_hex=color.raw_hex,
                w3c=resources_pb2.W3C(hex=color.w3c_hex, name=color.w3c_name),
                value=color.value,
            )
        )


def _no_weights(model: ModelRecord) -> ApiError:
    return ApiError(
        C.MODEL_UNTRAINED,
        "Model has no weights",
        f"Model '{model.model_id}' of {model.user_id}/{model.app_id} has no weights to run. "
        "Whoever runs this server loads them with: scopegate models register "
        f"{model.user_id} {model.app_id} {model.model_id} --onnx MODEL.onnx --labels "
        "LABELS.txt (see the README, 'Models and predict').",
    )


def post_model_outputs(ctx: RequestContext, request):
    model_id = request.model_id or request.model.id
    version_id = request.version_id or request.model.model_version.id
    with ctx.services.engine.connect() as conn:
        model = find_model(conn, target_app(conn, ctx), model_id)
        version = find_version(conn, model, version_id)
    if version is None:
        raise _no_weights(model)
    if not request.inputs:
        raise invalid_argument("Give at least one input in 'inputs'.")
    if len(request.inputs) > MAX_INPUTS:
        raise invalid_argument(f"At most {MAX_INPUTS} inputs per request.")

    loaded = _load_all(ctx.services.media, request.inputs)
    images = [item.image for item in loaded if item.image is not None]
    try:
        runner = ctx.services.runners.runner(model.model_type_id, version)
        predictions = iter(runner.predict(images) if images else [])
    except RunnerError as exc:
        raise ApiError(C.MODEL_PREDICTION_FAILED, "Model prediction failed", str(exc)) from None

    # The request's output_config, else the one the model was created with.
    if request.model.output_info.HasField("output_config"):
        config = request.model.output_info.output_config
    else:
        config = model_output_config(model)
    shown_model = model_message(model, version, with_concepts=False)
    created = timestamp(now())
    response = ctx.spec.output_type()
    for item, result in zip(request.inputs, loaded, strict=True):
        output = response.outputs.add(id=uuid.uuid4().hex, created_at=created)
        output.model.CopyFrom(shown_model)
        output.input.id = item.id or uuid.uuid4().hex
        if item.data.image.url:
            output.input.data.image.url = item.data.image.url
        if result.error is not None:
            output.status.CopyFrom(
                status_pb2.Status(
                    code=result.error.code,
                    description=_INPUT_DESCRIPTIONS.get(result.error.code, "Input failed"),
                    details=result.error.reason,
                )
            )
            continue
        output.status.CopyFrom(status_pb2.Status(code=C.SUCCESS, description="Ok"))
        _fill(output.data, next(predictions), config)

    failed = sum(1 for item in loaded if item.error is not None)
    if failed == len(loaded):
        response.status.CopyFrom(
            status_pb2.Status(
                code=C.FAILURE,
                description="Failure",
                details="No input could be predicted: each output's status says why.",
            )
        )
    elif failed:
        response.status.CopyFrom(
            status_pb2.Status(
                code=C.MIXED_STATUS,
                description="Mixed Success",
                details=f"{failed} of {len(loaded)} inputs failed: see each output's status.",
            )
        )
    return response


HANDLERS = {
    # Blocking: image decoding and inference run in a worker thread, off the event loop.
    "PostModelOutputs": Handler(post_model_outputs),
}
