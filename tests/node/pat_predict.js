// The seeds' Node.js snippet with the official client (require, ClarifaiStub, a Metadata with
// "Key " + PAT, user_app_id), completed into the documents' PostModelOutputs example: the
// `clarifai/main` app's `color-recognition` model on one image. Run by tests/test_node_client.py.
//
// Changed from the documents, and only this:
//  - the address: ClarifaiStub.grpc() is used as the documents use it, TLS included; the test
//    points it at its scopegate server (started with --tls-cert/--tls-key) through the
//    client's CLARIFAI_GRPC_BASE, and makes grpc-js trust that server's throwaway certificate
//    through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, both in the environment;
//  - the PAT and the image come from the environment (no secret in a file); the image is a
//    URL (IMAGE_URL) or, as in the "predict via bytes" example, a file's bytes
//    (IMAGE_FILE_LOCATION);
//  - the response's status and outputs are printed as JSON for the test to read, before
//    the documents' check of the status.

///////////////////////////////////////////////////////////////////////////////////////////////////
// In this section, we set the user authentication, user and app ID, model details, and the URL
// of the image we want as an input. Change these strings to run your own example.
///////////////////////////////////////////////////////////////////////////////////////////////////

// Your PAT (Personal Access Token) can be found in the Account's Security section
const PAT = process.env.CLARIFAI_PAT;
// Specify the correct user_id/app_id pairings
// Since you're making inferences outside your app's scope
const USER_ID = 'clarifai';
const APP_ID = 'main';
// Change these to whatever model and image URL you want to use
const MODEL_ID = 'color-recognition';
// This is optional. You can specify a model version or the empty string for the default
const MODEL_VERSION_ID = '';
const IMAGE_URL = process.env.IMAGE_URL;
const IMAGE_FILE_LOCATION = process.env.IMAGE_FILE_LOCATION;

///////////////////////////////////////////////////////////////////////////////////
// YOU DO NOT NEED TO CHANGE ANYTHING BELOW THIS LINE TO RUN THIS EXAMPLE
///////////////////////////////////////////////////////////////////////////////////

const fs = require("fs");
const { ClarifaiStub, grpc } = require("clarifai-nodejs-grpc");

const stub = ClarifaiStub.grpc();

// This will be used by every Clarifai endpoint call
const metadata = new grpc.Metadata();
metadata.set("authorization", "Key " + PAT);

const image = IMAGE_FILE_LOCATION
    ? { base64: fs.readFileSync(IMAGE_FILE_LOCATION) }
    : { url: IMAGE_URL, allow_duplicate_url: true };

stub.PostModelOutputs(
    {
        user_app_id: {
            "user_id": USER_ID,
            "app_id": APP_ID
        },
        model_id: MODEL_ID,
        version_id: MODEL_VERSION_ID, // This is optional. Defaults to the latest model version
        inputs: [
            { data: { image: image } }
        ]
    },
    metadata,
    (err, response) => {
        if (err) {
            throw new Error(err);
        }

        console.log(JSON.stringify({ status: response.status, outputs: response.outputs }));

        if (response.status.code !== 10000) {
            throw new Error("Post model outputs failed, status: " + response.status.description);
        }
    }
);
