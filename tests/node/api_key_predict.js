// The API-key variant of the seeds' Node.js example with the official client: the key
// carries the user and app, so the request has no user_app_id. Run by
// tests/test_node_client.py; changed from the documents as pat_predict.js says (the address
// and the trusted certificate through the environment, values from the environment, JSON
// printed).

// Your API Key
const API_KEY = process.env.CLARIFAI_API_KEY;
const MODEL_ID = process.env.MODEL_ID;
const IMAGE_URL = process.env.IMAGE_URL;

const { ClarifaiStub, grpc } = require("clarifai-nodejs-grpc");

const stub = ClarifaiStub.grpc();

// This will be used by every Clarifai endpoint call
const metadata = new grpc.Metadata();
metadata.set("authorization", "Key " + API_KEY);

stub.PostModelOutputs(
    {
        model_id: MODEL_ID,
        inputs: [
            { data: { image: { url: IMAGE_URL, allow_duplicate_url: true } } }
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
