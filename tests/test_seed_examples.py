"""The seeds' examples, run as written but for the addresses: Clarifai's PAT predict
snippet against `clarifai/main`, the API-key predict on one's own model, and the cURL key
creation. Each snippet runs in its own Python process, like a user's script.

Changed from the documents, and only this: the channel line (the documented
`get_grpc_channel()` is TLS to Clarifai's host: here the insecure gRPC channel or the JSON
channel to the test server), the image URL (a local server's image instead of
samples.clarifai.com, which tests cannot reach), the credential and ids, and the snippet's
own "uncomment to print the full response" line, uncommented so colours show.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from tests.conftest import Client
from tests.support.predicting import new_app, new_color_model, register_classifier
from tests.test_authentication import me
from tests.test_flow import ok

PAT_SNIPPET = """\
##################################################################################################
# In this section, we set the user authentication, user and app ID, model details, and the URL
# of the image we want as an input. Change these strings to run your own example.
#################################################################################################

# Your PAT (Personal Access Token) can be found in the Account's Security section
PAT = '{pat}'
# Specify the correct user_id/app_id pairings
# Since you're making inferences outside your app's scope
USER_ID = 'clarifai'
APP_ID = 'main'
MODEL_ID = '{model_id}'
# This is optional. You can specify a model version or the empty string for the default
MODEL_VERSION_ID = ''
IMAGE_URL = '{image_url}'

############################################################################
# YOU DO NOT NEED TO CHANGE ANYTHING BELOW THIS LINE TO RUN THIS EXAMPLE
############################################################################

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2

channel = {channel}
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
print(output)
"""  # noqa: E501

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
def general_model(server, tmp_path_factory) -> dict:
    """Weights for clarifai/main's general-image-recognition: the red/green/blue test
    classifier, registered with the CLI as the README says."""
    return register_classifier(
        server, tmp_path_factory.mktemp("weights"), "clarifai", "main", "general-image-recognition"
    )


def test_pat_snippet_with_color_recognition(server, client: Client, user, image_base):
    _, pat = user
    printed = run_snippet(
        PAT_SNIPPET,
        pat=pat,
        model_id="color-recognition",
        image_url=f"{image_base}/img/40x30.png",  # a (200, 30, 30) PNG
        channel=channel_line(server, client.transport),
    )
    assert printed.startswith("Predicted concepts:\n")
    assert 'raw_hex: "#c81e1e"' in printed and "value: 1" in printed
    assert "w3c {" in printed


def test_pat_snippet_with_general_image_recognition(
    server, client: Client, user, image_base, general_model
):
    _, pat = user
    printed = run_snippet(
        PAT_SNIPPET,
        pat=pat,
        model_id="general-image-recognition",
        image_url=f"{image_base}/img/40x30.png",
        channel=channel_line(server, client.transport),
    )
    lines = printed.splitlines()
    assert lines[0] == "Predicted concepts:"
    assert [line.split()[0] for line in lines[1:4]] == ["red", "green", "blue"]
    assert float(lines[1].split()[1]) > 0.9
    assert general_model["version_id"] in printed


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
