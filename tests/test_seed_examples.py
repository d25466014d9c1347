"""The seeds' examples, run as written but for the addresses: Clarifai's PAT predict
snippet against `clarifai/main`, the API-key predict on one's own model, and the cURL key
creation. Each snippet runs in its own Python process, like a user's script.

The PAT snippet is kept here exactly as the documents give it (`SEED_PAT_SNIPPET`). It is
run against a test server started with TLS, as `ClarifaiChannel.get_grpc_channel()` wants:
the channel line is left as it is and the client finds the server through its
CLARIFAI_GRPC_BASE and trusts the throwaway certificate through gRPC's
GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (for the JSON transport the line names
`get_json_channel()`, which reads CLARIFAI_API_BASE, and requests trusts the certificate
through REQUESTS_CA_BUNDLE). Only the strings the snippet itself says to change are
replaced: the PAT and, for the colour model, MODEL_ID and the image URL. For
general-image-recognition even IMAGE_URL stays: the test servers reach
samples.clarifai.com:443 at a local HTTPS image server (SCOPEGATE_FETCH_CONNECT_TO) whose
test CA they trust (SSL_CERT_FILE), so the name in the URL is the one the certificate is
checked against. The snippet prints the concepts; the response it leaves in `output` is
printed by the test's runner after it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from tests.support.api import me, ok
from tests.support.clients import TRANSPORTS, Client, new_id
from tests.support.predicting import new_app, new_color_model, register_classifier

SEED_PAT_SNIPPET = """\
##################################################################################################
# In this section, we set the user authentication, user and app ID, model details, and the URL
# of the image we want as an input. Change these strings to run your own example.
#################################################################################################

# Your PAT (Personal Access Token) can be found in the Account's Security section
PAT = 'YOUR_PAT_HERE'
# Specify the correct user_id/app_id pairings
# Since you're making inferences outside your app's scope
USER_ID = 'clarifai'
APP_ID = 'main'
MODEL_ID = 'general-image-recognition'
# This is optional. You can specify a model version or the empty string for the default
MODEL_VERSION_ID = ''
IMAGE_URL = 'https://samples.clarifai.com/metro-north.jpg'

############################################################################
# YOU DO NOT NEED TO CHANGE ANYTHING BELOW THIS LINE TO RUN THIS EXAMPLE
############################################################################

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2

channel = ClarifaiChannel.get_grpc_channel()
stub = service_pb2_grpc.V2Stub(channel)

metadata = (('authorization', 'Key ' + PAT),)

userDataObject = resources_pb2.UserAppIDSet(user_id=USER_ID, app_id=APP_ID)

post_model_outputs_response = stub.PostModelOutputs(
    service_pb2.PostModelOutputsRequest(
        user_app_id=userDataObject, # The userDataObject is created in the overview and is required when using a PAT
        model_id=MODEL_ID,
        version_id=MODEL_VERSION_ID,
        inputs=[
            resources_pb2.Input(
                data=resources_pb2.Data(
                    image=resources_pb2.Image(
                        url=IMAGE_URL
                    )
                )
            )
        ]
    ),
    metadata=metadata
)
if post_model_outputs_response.status.code != status_code_pb2.SUCCESS:
    print(post_model_outputs_response.status)
    raise Exception("Post model outputs failed, status: " + post_model_outputs_response.status.description)

# Since we have one input, one output will exist here
output = post_model_outputs_response.outputs[0]

print("Predicted concepts:")
for concept in output.data.concepts:
    print("%s %.2f" % (concept.name, concept.value))

# Uncomment this line to print the full Response JSON
#print(output)
"""  # noqa: E501

# Runs a snippet read from stdin, then prints the response it left in `output`.
SNIPPET_RUNNER = """\
import sys
snippet = sys.stdin.read()
namespace = {"__name__": "__main__"}
exec(compile(snippet, "snippet.py", "exec"), namespace)
print(RESPONSE_MARK)
print(namespace["output"])
"""
RESPONSE_MARK = "----- the snippet's output -----"
# Where the official clients connect and what they trust: set by the test alone.
CLIENT_ENV = (
    "CLARIFAI_GRPC_BASE",
    "CLARIFAI_API_BASE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the snippet no longer has exactly one {old!r}"
    return text.replace(old, new)


def pat_snippet(transport: str, pat: str, image_url: str = "", model_id: str = "") -> str:
    """The documents' snippet with the strings it says to change changed; over JSON, the
    channel line names the JSON channel instead of the gRPC one. Without `image_url` the
    documents' own URL stays (test servers reach its host at a local HTTPS server)."""
    text = replace_once(SEED_PAT_SNIPPET, "PAT = 'YOUR_PAT_HERE'", f"PAT = {pat!r}")
    if image_url:
        text = replace_once(
            text,
            "IMAGE_URL = 'https://samples.clarifai.com/metro-north.jpg'",
            f"IMAGE_URL = {image_url!r}",
        )
    if model_id:
        text = replace_once(
            text, "MODEL_ID = 'general-image-recognition'", f"MODEL_ID = {model_id!r}"
        )
    if transport == "json":
        text = replace_once(
            text,
            "channel = ClarifaiChannel.get_grpc_channel()",
            "channel = ClarifaiChannel.get_json_channel()",
        )
    return text


def run_pat_snippet(server, transport: str, **values) -> tuple[str, str]:
    """Run the snippet in its own process against `server` (TLS, or plain over JSON): (what
    it printed, the response it left in `output`)."""
    result = pat_snippet_process(server, transport, **values)
    assert result.returncode == 0, result.stdout + result.stderr
    printed, _, output = result.stdout.partition(RESPONSE_MARK + "\n")
    return printed, output


def pat_snippet_process(server, transport: str, **values) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in CLIENT_ENV}
    if transport == "grpc":
        assert server.tls, "get_grpc_channel() speaks TLS only"
        env["CLARIFAI_GRPC_BASE"] = server.grpc_address
        env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(server.tls.cert)
    else:
        env["CLARIFAI_API_BASE"] = server.http_url
        if server.tls:
            env["REQUESTS_CA_BUNDLE"] = str(server.tls.cert)
    return subprocess.run(
        [sys.executable, "-c", SNIPPET_RUNNER.replace("RESPONSE_MARK", repr(RESPONSE_MARK))],
        input=pat_snippet(transport, **values),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


# The API-key example: the key carries the user and app, so no UserAppIDSet.
API_KEY_SNIPPET = """\
# Your API Key
API_KEY = '{api_key}'
MODEL_ID = '{model_id}'
IMAGE_URL = '{image_url}'

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2

channel = {channel}
stub = service_pb2_grpc.V2Stub(channel)

metadata = (('authorization', 'Key ' + API_KEY),)

post_model_outputs_response = stub.PostModelOutputs(
    service_pb2.PostModelOutputsRequest(
        model_id=MODEL_ID,
        inputs=[
            resources_pb2.Input(
                data=resources_pb2.Data(
                    image=resources_pb2.Image(
                        url=IMAGE_URL
                    )
                )
            )
        ]
    ),
    metadata=metadata
)
if post_model_outputs_response.status.code != status_code_pb2.SUCCESS:
    print(post_model_outputs_response.status)
    raise Exception("Post model outputs failed, status: " + post_model_outputs_response.status.description)

output = post_model_outputs_response.outputs[0]

print("Predicted concepts:")
for concept in output.data.concepts:
    print("%s %.2f" % (concept.name, concept.value))
print(output)
"""  # noqa: E501


def channel_line(server, transport: str) -> str:
    if transport == "grpc":
        host, port = server.grpc_address.split(":")
        return f"ClarifaiChannel.get_insecure_grpc_channel(base={host!r}, port={port})"
    return f"ClarifaiChannel.get_json_channel(base_url={server.http_url!r})"


def run_snippet(template: str, **values) -> str:
    result = subprocess.run(
        [sys.executable, "-c", template.format(**values)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def general_model(tls_server, tmp_path_factory) -> dict:
    """Weights for clarifai/main's general-image-recognition on the TLS server: the
    red/green/blue test classifier, registered with the CLI as the README says."""
    return register_classifier(
        tls_server,
        tmp_path_factory.mktemp("weights"),
        "clarifai",
        "main",
        "general-image-recognition",
    )


def test_the_snippet_is_the_documents_but_for_what_it_says_to_change():
    seed = SEED_PAT_SNIPPET.splitlines()
    for transport in TRANSPORTS:
        ran = pat_snippet(transport, "sgp_x", "http://127.0.0.1:1/a.png", "m").splitlines()
        assert len(ran) == len(seed)
        changed = {(old, new) for old, new in zip(seed, ran, strict=True) if old != new}
        expected = {
            ("PAT = 'YOUR_PAT_HERE'", "PAT = 'sgp_x'"),
            ("MODEL_ID = 'general-image-recognition'", "MODEL_ID = 'm'"),
            (
                "IMAGE_URL = 'https://samples.clarifai.com/metro-north.jpg'",
                "IMAGE_URL = 'http://127.0.0.1:1/a.png'",
            ),
        }
        if transport == "json":
            expected.add(
                (
                    "channel = ClarifaiChannel.get_grpc_channel()",
                    "channel = ClarifaiChannel.get_json_channel()",
                )
            )
        assert changed == expected
        kept_url = pat_snippet(transport, "sgp_x").splitlines()
        changed = {(old, new) for old, new in zip(seed, kept_url, strict=True) if old != new}
        assert changed == expected - {
            ("MODEL_ID = 'general-image-recognition'", "MODEL_ID = 'm'"),
            (
                "IMAGE_URL = 'https://samples.clarifai.com/metro-north.jpg'",
                "IMAGE_URL = 'http://127.0.0.1:1/a.png'",
            ),
        }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pat_snippet_with_color_recognition(tls_server, transport, image_base):
    pat = tls_server.create_user(new_id())
    printed, output = run_pat_snippet(
        tls_server,
        transport,
        pat=pat,
        model_id="color-recognition",
        image_url=f"{image_base}/img/40x30.png",  # a (200, 30, 30) PNG
    )
    assert printed == "Predicted concepts:\n"  # a colour model answers colours, no concepts
    assert 'raw_hex: "#c81e1e"' in output and "value: 1" in output
    assert 'id: "color-recognition"' in output and "w3c {" in output


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pat_snippet_with_general_image_recognition(
    tls_server, transport, https_image_base, general_model
):
    """The snippet with only the PAT (and the channel's address) changed: its IMAGE_URL,
    https://samples.clarifai.com/metro-north.jpg, is fetched from the local HTTPS image
    server (a red JPEG there), which the server reaches by SCOPEGATE_FETCH_CONNECT_TO and
    trusts by SSL_CERT_FILE; the certificate is checked against samples.clarifai.com."""
    pat = tls_server.create_user(new_id())
    snippet = pat_snippet(transport, pat)
    assert "IMAGE_URL = 'https://samples.clarifai.com/metro-north.jpg'" in snippet
    printed, output = run_pat_snippet(tls_server, transport, pat=pat)
    lines = printed.splitlines()
    assert lines[0] == "Predicted concepts:"
    assert [line.split()[0] for line in lines[1:4]] == ["red", "green", "blue"]
    assert float(lines[1].split()[1]) > 0.9
    assert general_model["version_id"] in output
    assert 'url: "https://samples.clarifai.com/metro-north.jpg"' in output


def test_pat_snippet_without_weights_says_how_to_load_them(server, image_base):
    """Before weights are registered (on the plain test servers no test registers any for
    clarifai/main), the snippet stops with the server's reason, which says how to load them.
    The JSON channel: plain HTTP, as the gRPC channel of the snippet is TLS only."""
    pat = server.create_user(new_id())
    result = pat_snippet_process(server, "json", pat=pat, image_url=f"{image_base}/img/40x30.png")
    assert result.returncode != 0
    assert "Post model outputs failed, status: Model has no weights" in result.stderr
    assert "code: MODEL_UNTRAINED" in result.stdout, result.stdout
    assert (
        "scopegate models register clarifai main general-image-recognition --onnx" in result.stdout
    )


def test_api_key_snippet_on_own_models(server, client: Client, user, image_base, tmp_path):
    user_id, pat = user
    app_id, api_key = new_app(client, pat)
    new_color_model(client, pat, me(app_id=app_id), "my-colors")
    register_classifier(server, tmp_path, user_id, app_id, "my-classifier")
    channel = channel_line(server, client.transport)
    image_url = f"{image_base}/img/12x12.png"
    colors = run_snippet(
        API_KEY_SNIPPET,
        api_key=api_key,
        model_id="my-colors",
        image_url=image_url,
        channel=channel,
    )
    assert 'raw_hex: "#c81e1e"' in colors
    concepts = run_snippet(
        API_KEY_SNIPPET,
        api_key=api_key,
        model_id="my-classifier",
        image_url=image_url,
        channel=channel,
    )
    assert concepts.splitlines()[1].startswith("red ")


def curl_create_key(server, user_id: str, pat: str, app_id: str) -> dict:
    """The documented cURL command, with real curl when installed (else requests)."""
    url = f"{server.http_url}/v2/users/{user_id}/keys"
    data = """{
    "keys": [
        {
            "description": "All permissions",
            "scopes": [
                "All"
            ],
            "apps": [
                {
                    "id": "%s",
                    "user_id": "%s"
                }
            ]
        }
    ]
}""" % (app_id, user_id)  # noqa: UP031  (the document's JSON, braces and all)
    if shutil.which("curl"):
        result = subprocess.run(
            [
                "curl", "--silent", "--location", "--request", "POST", url,
                "--header", "Content-Type: application/json",
                "--header", f"Authorization: Key {pat}",
                "--data-raw", data,
            ],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return json.loads(result.stdout)
    import requests

    return requests.post(
        url,
        data=data,
        headers={"Content-Type": "application/json", "Authorization": f"Key {pat}"},
        timeout=30,
    ).json()


def test_curl_key_creation_then_the_key_predicts(server, client: Client, user, image_base):
    user_id, pat = user
    app_id, _ = new_app(client, pat)
    new_color_model(client, pat, me(app_id=app_id))
    body = curl_create_key(server, user_id, pat, app_id)
    assert body["status"]["code"] == 10000, body
    (key,) = body["keys"]
    assert key["description"] == "All permissions" and key["scopes"] == ["All"]
    assert key["type"] == "app_specific_key" and key["apps"][0]["id"] == app_id
    secret = key["id"]
    # The new key, on this test's transport, with no ids: it carries them.
    answer = ok(
        client.stub.PostModelOutputs(
            service_pb2.PostModelOutputsRequest(
                model_id="colors",
                inputs=[
                    resources_pb2.Input(
                        data=resources_pb2.Data(
                            image=resources_pb2.Image(url=f"{image_base}/img/9x9.png")
                        )
                    )
                ],
            ),
            metadata=client.auth(secret),
        )
    )
    assert answer.outputs[0].data.colors[0].raw_hex == "#c81e1e"
