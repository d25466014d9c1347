"""Helpers for model and predict tests: images, apps, registered classifiers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from tests.support.api import me, ok
from tests.support.clients import Client, new_id
from tests.support.onnx_models import write_classifier

RED = (230, 20, 20)
BLUE = (10, 20, 220)


def png(color=RED, size=(16, 12)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_input(data: bytes | None = None, url: str = "", input_id: str = ""):
    image = resources_pb2.Image(base64=data) if data is not None else resources_pb2.Image(url=url)
    return resources_pb2.Input(id=input_id, data=resources_pb2.Data(image=image))


def new_app(client: Client, pat: str, visibility: int = 0) -> tuple[str, str]:
    """A new app of the PAT's user: (app id, its default API key)."""
    app_id = new_id("app")
    app = resources_pb2.App(id=app_id)
    if visibility:
        app.visibility.gettable = visibility
    created = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(user_app_id=me(), apps=[app]), metadata=client.auth(pat)
        )
    )
    return app_id, created.apps[0].metadata["default_api_key"]


def new_color_model(client: Client, secret: str, ids, model_id: str = "colors") -> None:
    ok(
        client.stub.PostModels(
            service_pb2.PostModelsRequest(
                user_app_id=ids,
                models=[resources_pb2.Model(id=model_id, model_type_id="color-recognizer")],
            ),
            metadata=client.auth(secret),
        )
    )


def register_classifier(
    server, directory: Path, user_id: str, app_id: str, model_id: str, *extra: str
) -> dict:
    """Register the red/green/blue test classifier with the CLI; its JSON answer."""
    model_path, labels_path = write_classifier(directory / new_id("onnx"))
    result = server.cli(
        "models",
        "register",
        user_id,
        app_id,
        model_id,
        "--onnx",
        str(model_path),
        "--labels",
        str(labels_path),
        "--json",
        *extra,
    )
    if result.returncode != 0:
        pytest.fail(f"models register failed: {result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])
