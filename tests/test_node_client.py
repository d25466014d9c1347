"""The seeds' PAT flow from Node.js with the official `clarifai-nodejs-grpc` client.

`python3 tools/dev.py test` installs Node.js/npm (Debian's packages, when root) and runs
`npm ci` in tests/node; this test skips only when `node` or tests/node/node_modules is absent.
The scripts (tests/node/*.js) are the documents' example, `ClarifaiStub.grpc()` and all: TLS
with grpc-js's usual checks of the chain and the host name. The test server is started with
--tls-cert/--tls-key and a throwaway self-signed certificate for localhost; the scripts find
it through the client's CLARIFAI_GRPC_BASE (`localhost:PORT`) and trust the certificate
through grpc-js's GRPC_DEFAULT_SSL_ROOTS_FILE_PATH. They get the credential and image from
their environment too, and print the response's status and outputs as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import me
from tests.support.clients import Client, make_stub, new_id
from tests.support.predicting import new_app, new_color_model
from tests.support.server_process import ServerProcess

NODE_DIR = Path(__file__).resolve().parent / "node"
CLIENT_PACKAGE = NODE_DIR / "node_modules" / "clarifai-nodejs-grpc" / "package.json"

CLIENT_TLS_ENV = (
    "CLARIFAI_GRPC_BASE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "NODE_TLS_REJECT_UNAUTHORIZED",
)
RED, RED_HEX = (200, 30, 30), "#c81e1e"
BLUE, BLUE_HEX = (10, 120, 240), "#0a78f0"


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if not exe:
        pytest.skip("node is not installed (python3 tools/dev.py test installs it)")
    if not CLIENT_PACKAGE.exists():
        pytest.skip(
            "tests/node/node_modules has no clarifai-nodejs-grpc "
            "(python3 tools/dev.py test runs npm ci there)"
        )
    return exe


@pytest.fixture
def tls_user(tls_server) -> tuple[str, str]:
    """A fresh user of the TLS server: (user_id, default PAT)."""
    user_id = new_id()
    return user_id, tls_server.create_user(user_id)


def client_env(server: ServerProcess, *, trust: bool = True) -> dict[str, str]:
    """Where the official client connects (host and port, no scheme), and the file grpc-js
    takes its root certificates from instead of its built-in ones."""
    assert server.tls and server.grpc_address.startswith("localhost:")
    env = {"CLARIFAI_GRPC_BASE": server.grpc_address}
    if trust:
        env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(server.tls.cert)
    return env


def run_script(node: str, script: str, **env: str) -> tuple[int, dict | None, str]:
    """Run tests/node/<script> with `env` added: (exit code, its JSON line or None, output)."""
    # Nothing inherited decides where the client connects or what it trusts.
    inherited = {name: value for name, value in os.environ.items() if name not in CLIENT_TLS_ENV}
    result = subprocess.run(
        [node, script],
        cwd=NODE_DIR,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    printed = result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    return result.returncode, (json.loads(lines[-1]) if lines else None), printed


def colors_of(answer: dict) -> list[dict]:
    assert answer["status"]["code"] == codes.SUCCESS, answer["status"]
    (output,) = answer["outputs"]
    assert output["status"]["code"] == codes.SUCCESS, output["status"]
    colors = output["data"]["colors"]
    assert colors
    for color in colors:
        for value in (color["raw_hex"], color["w3c"]["hex"]):
            assert len(value) == 7 and value[0] == "#" and int(value[1:], 16) >= 0, color
        assert color["w3c"]["name"] and 0 < color["value"] <= 1, color
    assert abs(sum(color["value"] for color in colors) - 1) < 0.02, colors
    return colors


def two_color_png(path: Path) -> Path:
    """A 40x30 PNG: its left three quarters RED, its right quarter BLUE."""
    from PIL import Image

    image = Image.new("RGB", (40, 30), RED)
    image.paste(BLUE, (30, 0, 40, 30))
    image.save(path, format="PNG")
    return path


def test_pat_predict_with_an_image_url(node, tls_server, tls_user, image_base):
    _, pat = tls_user
    code, answer, printed = run_script(
        node,
        "pat_predict.js",
        **client_env(tls_server),
        CLARIFAI_PAT=pat,
        IMAGE_URL=f"{image_base}/img/40x30.png",  # a (200, 30, 30) PNG
    )
    assert code == 0, printed
    (color,) = colors_of(answer)
    assert color["raw_hex"] == RED_HEX and color["value"] == 1
    assert answer["outputs"][0]["model"]["id"] == "color-recognition"


def test_pat_predict_with_image_bytes(node, tls_server, tls_user, tmp_path):
    _, pat = tls_user
    code, answer, printed = run_script(
        node,
        "pat_predict.js",
        **client_env(tls_server),
        CLARIFAI_PAT=pat,
        IMAGE_FILE_LOCATION=str(two_color_png(tmp_path / "two-colors.png")),
    )
    assert code == 0, printed
    colors = colors_of(answer)
    assert [(c["raw_hex"], round(c["value"], 2)) for c in colors] == [
        (RED_HEX, 0.75),
        (BLUE_HEX, 0.25),
    ]


def test_an_unknown_pat_is_refused(node, tls_server, image_base):
    code, answer, printed = run_script(
        node,
        "pat_predict.js",
        **client_env(tls_server),
        CLARIFAI_PAT="0123456789abcdef0123456789abcdef",
        IMAGE_URL=f"{image_base}/img/40x30.png",
    )
    # The script prints the answer, then throws as the documents do.
    assert code != 0 and "Post model outputs failed" in printed, printed
    assert answer["status"]["code"] == codes.CONN_KEY_INVALID, answer
    assert not answer["outputs"]


def test_api_key_predict_on_own_app(node, tls_server, tls_user, image_base):
    _, pat = tls_user
    client = Client("grpc", make_stub(tls_server, "grpc"))
    app_id, api_key = new_app(client, pat)
    new_color_model(client, pat, me(app_id=app_id), "my-colors")
    code, answer, printed = run_script(
        node,
        "api_key_predict.js",
        **client_env(tls_server),
        CLARIFAI_API_KEY=api_key,
        MODEL_ID="my-colors",
        IMAGE_URL=f"{image_base}/img/12x12.png",
    )
    assert code == 0, printed
    (color,) = colors_of(answer)
    assert color["raw_hex"] == RED_HEX
    assert answer["outputs"][0]["model"]["id"] == "my-colors"


def test_the_server_certificate_must_be_trusted(node, tls_server, tls_user, image_base):
    """Without the certificate among its roots, grpc-js refuses the server before any call."""
    _, pat = tls_user
    code, answer, printed = run_script(
        node,
        "pat_predict.js",
        **client_env(tls_server, trust=False),
        CLARIFAI_PAT=pat,
        IMAGE_URL=f"{image_base}/img/40x30.png",
    )
    assert code != 0 and answer is None, printed
    assert "UNAVAILABLE" in printed and "self-signed certificate" in printed, printed
