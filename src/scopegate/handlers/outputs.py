"""PostModelOutputs: predict with a model's runner on a batch of images (bytes or URLs).

Inputs that cannot be had (bad URL, undecodable or oversized image) fail on their own
output; the others are still predicted. The top status is SUCCESS, MIXED_STATUS when some
failed, or FAILURE when all did.

The clarifai SDK's signature convention is understood too: an input names its method in
`data.metadata._method_name` ("predict", or "_GET_SIGNATURES", answered with the model's
method signatures as JSON in `data.text.raw`) and may carry its image as the part named
"image" (`data.parts[].data.image`). Under it, the colour model also answers each colour
as a JSON part (`data.parts[].data.struct_value`), the list its signature promises.
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
from scopegate.handlers.model_signatures import PREDICT, signatures_json
from scopegate.handlers.models import find_model, find_version, no_weights
from scopegate.handlers.target_app import target_app
from scopegate.media import images as media
from scopegate.media.settings import MediaSettings
from scopegate.runners.base import Prediction, RunnerError
from scopegate.store.records import now

MAX_INPUTS = 128  # per request, as the Clarifai API
FETCH_WORKERS = 8
METHOD_KEY = "_method_name"  # the SDK's metadata key naming the method an input calls
GET_SIGNATURES = "_GET_SIGNATURES"

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


def input_image(data: resources_pb2.Data) -> resources_pb2.Image:
    """`data.image`, else the image of the part named "image" (the SDK's `predict(image=…)`)."""
    if data.image.base64 or data.image.url:
        return data.image
    for part in data.parts:
        if part.id == "image" and (part.data.image.base64 or part.data.image.url):
            return part.data.image
    return data.image


def method_of(item: resources_pb2.Input) -> str:
    """The method an input calls: `predict` unless its metadata names another."""
    named = item.data.metadata.fields.get(METHOD_KEY)
    return (named.string_value if named is not None else "") or PREDICT


def _uses_signatures(item: resources_pb2.Input) -> bool:
    return METHOD_KEY in item.data.metadata.fields


def _load(limits: MediaSettings, item: resources_pb2.Input) -> _Loaded:
    if method_of(item) != PREDICT:
        return _Loaded()  # nothing to fetch: answered from the model's description
    image = input_image(item.data)
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
    if sum(1 for i in inputs if input_image(i.data).url and not input_image(i.data).base64) <= 1:
        return [load(i) for i in inputs]
    # URLs are fetched side by side: a batch waits for its slowest URL, not their sum.
    with ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="fetch") as pool:
        return list(pool.map(load, inputs))


def _fill(data: resources_pb2.Data, prediction: Prediction, config, *, as_parts: bool) -> None:
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
        if as_parts:  # List[JSON] in the colour model's signature: one part per colour
            data.parts.add().data.struct_value.update(
                {
                    "raw_hex": color.raw_hex,
                    "w3c": {"hex": color.w3c_hex, "name": color.w3c_name},
                    "value": color.value,
                }
            )


def _status(code: int, description: str, details: str = "") -> status_pb2.Status:
    return status_pb2.Status(code=code, description=description, details=details)


def _refused_with_outputs(spec, error: ApiError, count: int) -> ApiError:
    """`error`, answered with one output per input carrying it: the SDK reads `outputs[0]`
    of any answer, and an empty list would meet the user as an IndexError."""
    response = spec.output_type()
    for _ in range(max(1, count)):
        response.outputs.add(
            id=uuid.uuid4().hex, status=_status(error.code, error.description, error.details)
        )
    error.response = response
    return error


def post_model_outputs(ctx: RequestContext, request):
    model_id = request.model_id or request.model.id
    version_id = request.version_id or request.model.model_version.id
    with ctx.services.engine.connect() as conn:
        model = find_model(conn, target_app(conn, ctx), model_id)
        version = find_version(conn, model, version_id)
    if version is None:
        raise _refused_with_outputs(ctx.spec, no_weights(model), len(request.inputs))
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
    failed = 0
    for item, result in zip(request.inputs, loaded, strict=True):
        output = response.outputs.add(id=uuid.uuid4().hex, created_at=created)
        output.model.CopyFrom(shown_model)
        output.input.id = item.id or uuid.uuid4().hex
        url = input_image(item.data).url
        if url:
            output.input.data.image.url = url
        method = method_of(item)
        if method == GET_SIGNATURES:
            output.status.CopyFrom(_status(C.SUCCESS, "Ok"))
            output.data.text.raw = signatures_json(model.model_type_id)
        elif method != PREDICT:
            failed += 1
            output.status.CopyFrom(
                _status(
                    C.MODEL_INVALID_ARGUMENT,
                    "Unknown method",
                    f"Model '{model.model_id}' has no method '{method}': it answers "
                    f"'{PREDICT}' (and '{GET_SIGNATURES}' describes it).",
                )
            )
        elif result.error is not None:
            failed += 1
            output.status.CopyFrom(
                _status(
                    result.error.code,
                    _INPUT_DESCRIPTIONS.get(result.error.code, "Input failed"),
                    result.error.reason,
                )
            )
        else:
            output.status.CopyFrom(_status(C.SUCCESS, "Ok"))
            _fill(output.data, next(predictions), config, as_parts=_uses_signatures(item))

    if failed == len(loaded):
        response.status.CopyFrom(
            _status(
                C.FAILURE,
                "Failure",
                "No input could be predicted: each output's status says why.",
            )
        )
    elif failed:
        response.status.CopyFrom(
            _status(
                C.MIXED_STATUS,
                "Mixed Success",
                f"{failed} of {len(loaded)} inputs failed: see each output's status.",
            )
        )
    return response


HANDLERS = {
    # Blocking: image decoding and inference run in a worker thread, off the event loop.
    "PostModelOutputs": Handler(post_model_outputs),
}
