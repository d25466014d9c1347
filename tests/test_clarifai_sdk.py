"""The official `clarifai` SDK (12.5) and its command line against a real server (issue 13).

The SDK is in the test extras (pyproject.toml), so it runs with this interpreter, but in
subprocesses: its channel kind is a module global (DESIGN.md), it caches per process which
scheme a base URL has, and `clarifai login` writes `$HOME/.config/clarifai/config`.
SCOPEGATE_SDK_PYTHON names another interpreter with the SDK, should it ever need a
virtualenv of its own.

All flows run in one subprocess per server (tests/sdk/flows.py, one JSON line per step),
and each test asserts its steps. A method the SDK calls that scopegate lacks surfaces as
that step's error text ("NOT_IMPLEMENTED ... /clarifai.api.V2/GetModelType") in a failing
assertion, never a skip.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.clients import new_id
from tests.support.images import png_bytes
from tests.support.predicting import register_classifier
from tests.support.server_process import ServerProcess
from tests.support.servers import start_server

FLOWS = Path(__file__).parent / "sdk" / "flows.py"
COLOR_MODEL = "clarifai/main/models/color-recognition"
SDK_TIMEOUT = 300


def sdk_python() -> str:
    return os.environ.get("SCOPEGATE_SDK_PYTHON") or sys.executable


@dataclass
class SdkServer:
    """A server and how the SDK is pointed at it."""

    server: ServerProcess
    base: str  # CLARIFAI_API_BASE: where the SDK's gRPC goes, with its scheme
    rest_base: str  # where its one REST call (list_organizations) must go to succeed
    env: dict[str, str] = field(default_factory=dict)  # root certificates, with TLS
    one_port: bool = False


# With one port (`scopegate serve --port N`) the SDK, its REST call and the JSON channel
# share one address; with TLS the SDK's gRPC and requests each trust the certificate.
MODES = ["two_ports", "one_port", "one_port_tls"]


@pytest.fixture(scope="module", params=MODES)
def sdk_server(request, tmp_path_factory) -> Iterator[SdkServer]:
    """A server of its own (SQLite: the wire is what is tested here; both backends are
    covered by the other suites)."""
    if request.param == "two_ports":
        server = start_server(request, tmp_path_factory, "sqlite")
        # The SDK's gRPC goes to the gRPC port; its one REST call to the HTTP port, as the
        # README says for this mode.
        yield SdkServer(server, f"http://{server.grpc_address}", server.http_url)
    else:
        tls = (
            request.getfixturevalue("tls_certificate") if request.param == "one_port_tls" else None
        )
        server = start_server(request, tmp_path_factory, "sqlite", tls=tls, one_port=True)
        trust = str(tls.cert) if tls else ""
        env = {"CLARIFAI_ROOT_CERTIFICATES_PATH": trust, "REQUESTS_CA_BUNDLE": trust} if tls else {}
        yield SdkServer(server, server.http_url, server.http_url, env, one_port=True)
    server.stop()


@dataclass
class SdkRun:
    steps: dict[str, dict]
    user_id: str
    pat: str
    org_id: str
    classes_app: str
    stderr: str
    sdk: SdkServer

    def value(self, step: str):
        entry = self.steps.get(step)
        assert entry is not None, f"step {step} did not run:\n{self.stderr}"
        assert entry["ok"], f"{step}: {entry['error']}"
        return entry["value"]

    def error(self, step: str) -> str:
        entry = self.steps.get(step)
        assert entry is not None, f"step {step} did not run:\n{self.stderr}"
        assert not entry["ok"], f"{step} should have failed, answered {entry['value']!r}"
        return entry["error"]


def sdk_env(pat: str, base: str, home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARIFAI_")}
    env.update(
        HOME=str(home),  # `clarifai login` writes ~/.config/clarifai/config
        CLARIFAI_PAT=pat,
        CLARIFAI_API_BASE=base,  # always with its scheme: without one the SDK probes https://
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def sdk_run(sdk_server: SdkServer, image_base: str, tmp_path_factory) -> SdkRun:
    """Every SDK flow against one server, in one subprocess."""
    server, tmp = sdk_server.server, tmp_path_factory.mktemp("sdk")
    user_id = new_id()
    pat = server.create_user(user_id)
    org_id = new_id("org")
    created = server.cli("orgs", "create", org_id, "--admin", user_id, "--name", "Acme Labs")
    assert created.returncode == 0, created.stderr
    classes_app = new_id("app")
    made = server.cli("apps", "create", classes_app, "--user", user_id)
    assert made.returncode == 0, made.stderr
    register_classifier(server, tmp, user_id, classes_app, "classes")
    red, blue = tmp / "red.png", tmp / "blue.png"
    red.write_bytes(png_bytes(32, 32, (255, 0, 0)))
    blue.write_bytes(png_bytes(32, 32, (0, 0, 255)))
    home = tmp / "home"
    home.mkdir()
    models = f"https://clarifai.com/{user_id}/{classes_app}/models"
    cfg = {
        "user_id": user_id,
        "base": sdk_server.base,
        "rest_base": sdk_server.rest_base,
        "app_id": new_id("sdkapp"),
        "red_png": str(red),
        "blue_png": str(blue),
        "image_base": image_base,  # loopback: the servers run with FETCH_PRIVATE_HOSTS=1
        "color_url": f"https://clarifai.com/{COLOR_MODEL}",
        "classes_url": f"{models}/classes",
        # Seeded without weights (a server of its own: nobody registers them here).
        "untrained_url": "https://clarifai.com/clarifai/main/models/general-image-recognition",
    }
    result = subprocess.run(
        [sdk_python(), str(FLOWS), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=SDK_TIMEOUT,
        env=sdk_env(pat, sdk_server.base, home, sdk_server.env),
    )
    steps = {}
    for line in result.stdout.splitlines():
        if line.startswith('{"step"'):
            entry = json.loads(line)
            steps[entry.pop("step")] = entry
    return SdkRun(steps, user_id, pat, org_id, classes_app, result.stderr[-4000:], sdk_server)


def test_the_sdk_is_the_pinned_one():
    """What the README promises: clarifai 12.5 beside protobuf < 7."""
    assert importlib.metadata.version("clarifai") == "12.5.0"
    assert int(importlib.metadata.version("protobuf").split(".")[0]) < 7


def test_apps(sdk_run: SdkRun):
    app_id = sdk_run.value("create_app")
    assert app_id in sdk_run.value("list_apps_after")
    assert sdk_run.value("patch_app") == app_id  # PatchApp (singular)
    assert sdk_run.value("app_description") == "patched by the SDK"
    # Notes are not stored here: refused by name, never answered as kept.
    refused = sdk_run.error("patch_app_notes")
    assert "11102" in refused or "CONN_INVALID_REQUEST" in refused
    assert "notes" in refused


def test_list_organizations(sdk_run: SdkRun):
    # The SDK reads organizations[i].organization.{id,name}; a wrong shape gives id ''.
    listed = sdk_run.value("list_organizations")
    assert listed == [{"id": sdk_run.org_id, "name": "Acme Labs"}]


def test_models_of_clarifai_main(sdk_run: SdkRun):
    # App.list_models keeps only models whose ListModels entry carries model_version.
    assert "color-recognition" in sdk_run.value("list_models_main")


def test_concepts_and_input_count(sdk_run: SdkRun):
    assert {"cat", "dog"} <= set(sdk_run.value("list_concepts"))
    assert sdk_run.value("input_count_empty") == 0  # GetInputCount: counts.processed
    assert sdk_run.value("input_count") == 2
    assert sdk_run.value("input_count_after_delete") == 1


def test_inputs(sdk_run: SdkRun):
    assert sdk_run.value("upload_from_bytes")  # the inputs-add job id
    assert sdk_run.value("upload_from_url")
    listed = sdk_run.value("list_inputs")
    assert listed == {"from-bytes": 30000, "from-url": 30000}  # INPUT_DOWNLOAD_SUCCESS
    assert sdk_run.value("patched_concepts") == ["cat", "dog"]
    assert sdk_run.value("listed_after_delete") == ["from-bytes"]


def test_color_model_predict_paths(sdk_run: SdkRun):
    assert sdk_run.value("color_predict_by_bytes_image")[0] == "Red"
    # Without input_type the SDK asks GetModelType for model_type.input_fields (["image"]).
    assert sdk_run.value("color_predict_by_bytes")[0] == "Blue"
    assert sdk_run.value("color_predict_by_url")[0] == "Red"
    # Model.predict: method signatures from GetModelVersion with an empty version_id.
    assert sdk_run.value("color_methods") == ["predict"]
    # List[JSON], one object per colour: {raw_hex, w3c: {hex, name}, value}.
    red = sdk_run.value("color_predict_image_bytes")
    assert red == [{"raw_hex": "#ff0000", "w3c": {"hex": "#ff0000", "name": "Red"}, "value": 1.0}]
    assert sdk_run.value("color_predict_image_url")[0]["w3c"]["name"] == "Blue"


def test_classifier_predict_paths(sdk_run: SdkRun):
    assert sdk_run.value("classes_predict_by_bytes")[0] == "red"
    assert sdk_run.value("classes_predict_by_url")[0] == "blue"
    assert sdk_run.value("classes_methods") == ["predict"]
    assert sdk_run.value("classes_predict_image")[0] == "blue"  # List[Concept]


def test_a_model_without_weights_says_so(sdk_run: SdkRun):
    # Through the probe's fallback too: an honest refusal, not the SDK's IndexError.
    error = sdk_run.error("untrained_predict_image")
    assert "Model has no weights" in error and "IndexError" not in error


def clarifai_cli(run: SdkRun, home: Path, *args: str, input: str | None = None):
    env = sdk_env(run.pat, run.sdk.base, home, run.sdk.env)
    env.pop("CLARIFAI_PAT")  # as a user would: the PAT comes from `clarifai login`
    env.pop("CLARIFAI_API_BASE")
    code = "import sys; from clarifai.cli.base import main; sys.argv[0] = 'clarifai'; main()"
    return subprocess.run(
        [sdk_python(), "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        timeout=SDK_TIMEOUT,
    )


def _result(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])["result"]


def test_cli_login_and_predict(sdk_run: SdkRun, tmp_path: Path):
    # Without --user-id, login lists the user's organizations (a REST call to the same
    # base) and asks which to use when there are some; "1" keeps the user.
    login = clarifai_cli(
        sdk_run, tmp_path, "login", sdk_run.sdk.base, "--pat", sdk_run.pat, input="1\n"
    )
    assert login.returncode == 0, login.stdout + login.stderr
    assert f"Logged in as {sdk_run.user_id}" in login.stdout
    if sdk_run.sdk.one_port:  # two ports: that call meets the gRPC port and finds none
        assert sdk_run.org_id in login.stdout
    red = tmp_path / "red.png"
    red.write_bytes(png_bytes(32, 32, (255, 0, 0)))
    predict = ("model", "predict")
    colour = clarifai_cli(
        sdk_run, tmp_path, *predict, COLOR_MODEL, "--file", str(red), "-o", "json"
    )
    assert "Red" in _result(colour)
    classes = f"{sdk_run.user_id}/{sdk_run.classes_app}/models/classes"
    answer = clarifai_cli(sdk_run, tmp_path, *predict, classes, "--file", str(red), "-o", "json")
    assert "name='red'" in _result(answer)
    info = clarifai_cli(sdk_run, tmp_path, *predict, COLOR_MODEL, "--info")
    assert "def predict(image: data_types.Image)" in info.stdout, info.stdout + info.stderr
