"""The clarifai SDK's everyday flows, run by tests/test_clarifai_sdk.py in a subprocess.

Imports nothing of scopegate or of the tests: the SDK's own code, unchanged, is what talks
to the server. Prints one JSON line per step: {"step", "ok", "value" | "error"}; a step
that fails carries the SDK's error text (which names the status the server answered).
Run as `python flows.py CONFIG_JSON`, with CLARIFAI_PAT and CLARIFAI_API_BASE set.
"""

import json
import sys
import time

from clarifai.client.app import App
from clarifai.client.input import Inputs
from clarifai.client.model import Model
from clarifai.client.user import User
from clarifai.runners.utils.data_types import Image
from clarifai_grpc.grpc.api import resources_pb2

cfg = json.loads(sys.argv[1])
USER, BASE, REST_BASE = cfg["user_id"], cfg["base"], cfg["rest_base"]
APP, IMAGES = cfg["app_id"], cfg["image_base"]
RED_URL, BLUE_URL = f"{IMAGES}/rgb/ff0000.png", f"{IMAGES}/rgb/0000ff.png"
with open(cfg["red_png"], "rb") as f:
    RED = f.read()
with open(cfg["blue_png"], "rb") as f:
    BLUE = f.read()
COLOR_URL, CLASSES_URL, UNTRAINED_URL = cfg["color_url"], cfg["classes_url"], cfg["untrained_url"]


def step(name, fn):
    try:
        value = fn()
        print(json.dumps({"step": name, "ok": True, "value": value}, default=str), flush=True)
    except BaseException as e:  # the error text names the status the server answered
        text = f"{type(e).__name__}: {e}"[:3000]
        print(json.dumps({"step": name, "ok": False, "error": text}), flush=True)


def colors(response):
    return [c.w3c.name for c in response.outputs[0].data.colors]


def concepts(response):
    return [c.name for c in response.outputs[0].data.concepts]


def model(url):
    return Model(url=url, base_url=BASE)


user = User(user_id=USER, base_url=BASE)
step("list_apps", lambda: sorted(a.id for a in user.list_apps()))
step("create_app", lambda: user.create_app(app_id=APP, base_workflow="Empty").id)
step("list_apps_after", lambda: sorted(a.id for a in user.list_apps()))
step(
    "patch_app",
    lambda: user.patch_app(app_id=APP, action="overwrite", description="patched by the SDK").id,
)
step("app_description", lambda: user.app(APP).app_info.description)
step("patch_app_notes", lambda: user.patch_app(app_id=APP, action="merge", notes="kept?").id)
# The SDK's one REST call: to the HTTP port in two-port mode.
step("list_organizations", lambda: User(user_id=USER, base_url=REST_BASE).list_organizations())

app = App(user_id=USER, app_id=APP, base_url=BASE)
main = App(user_id="clarifai", app_id="main", base_url=BASE)
step("list_models_main", lambda: sorted(m.id for m in main.list_models()))
step("create_concepts", lambda: app.create_concepts(["cat", "dog"]) or "done")
step("list_concepts", lambda: sorted(c.id for c in app.list_concepts()))
step("input_count_empty", lambda: app.get_input_count())

inputs = Inputs(user_id=USER, app_id=APP, base_url=BASE)
step(
    "upload_from_bytes",
    lambda: inputs.upload_from_bytes(input_id="from-bytes", image_bytes=RED, labels=["cat"])[0],
)
step("upload_from_url", lambda: inputs.upload_from_url(input_id="from-url", image_url=BLUE_URL)[0])


def wait_downloaded():
    deadline = time.monotonic() + 20
    while True:
        listed = {i.id: i.status.code for i in inputs.list_inputs()}
        if all(code != 30001 for code in listed.values()) or time.monotonic() > deadline:
            return listed
        time.sleep(0.2)


step("list_inputs", wait_downloaded)
step("input_count", lambda: app.get_input_count())
dog = resources_pb2.Concept(id="dog", value=1)
patch = resources_pb2.Input(id="from-bytes", data=resources_pb2.Data(concepts=[dog]))
step("patch_inputs", lambda: inputs.patch_inputs([patch], action="merge") or "done")
step(
    "patched_concepts",
    lambda: [
        c.id for c in next(i for i in inputs.list_inputs() if i.id == "from-bytes").data.concepts
    ],
)
step("delete_inputs", lambda: inputs.delete_inputs([resources_pb2.Input(id="from-url")]) or "done")
step("listed_after_delete", lambda: sorted(i.id for i in inputs.list_inputs()))
step("input_count_after_delete", lambda: app.get_input_count())

# The colour model (color-recognizer), every predict path.
step(
    "color_predict_by_bytes_image",
    lambda: colors(model(COLOR_URL).predict_by_bytes(RED, input_type="image")),
)
step("color_predict_by_bytes", lambda: colors(model(COLOR_URL).predict_by_bytes(BLUE)))
step("color_predict_by_url", lambda: colors(model(COLOR_URL).predict_by_url(RED_URL)))
step("color_methods", lambda: list(model(COLOR_URL).client.available_methods()))
step("color_predict_image_bytes", lambda: model(COLOR_URL).predict(image=Image(bytes=RED)))
step("color_predict_image_url", lambda: model(COLOR_URL).predict(image=Image(url=BLUE_URL)))

# A registered ONNX classifier (visual-classifier): labels red, green, blue.
step("classes_predict_by_bytes", lambda: concepts(model(CLASSES_URL).predict_by_bytes(RED)))
step("classes_predict_by_url", lambda: concepts(model(CLASSES_URL).predict_by_url(BLUE_URL)))
step("classes_methods", lambda: list(model(CLASSES_URL).client.available_methods()))
step(
    "classes_predict_image",
    lambda: [c.name for c in model(CLASSES_URL).predict(image=Image(bytes=BLUE))],
)
# A classifier without weights says so, through the signature probe too.
step("untrained_predict_image", lambda: model(UNTRAINED_URL).predict(image=Image(bytes=RED)))
