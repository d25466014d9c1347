"""A URL download cut short by a crash is queued again when a server starts on that database."""

from __future__ import annotations

import time

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.api import me, ok
from tests.support.apps import new_app
from tests.support.clients import Client, make_stub, new_id
from tests.support.images import gated_image_server
from tests.support.server_process import ServerProcess
from tests.support.servers import SERVER_ENV


def test_pending_download_survives_a_crash(tmp_path):
    env = {**SERVER_ENV, "SCOPEGATE_FETCH_TIMEOUT_SECONDS": "60"}
    with gated_image_server() as (base_url, gate):
        first = ServerProcess(data_dir=tmp_path, database_url=None, extra_env=env).start()
        try:
            pat = first.create_user(new_id())
            client = Client("grpc", make_stub(first, "grpc"))
            app_id, _ = new_app(client, pat)
            ids = me(app_id=app_id)
            image = resources_pb2.Image(url=f"{base_url}/gated.png")
            ok(
                client.stub.PostInputs(
                    service_pb2.PostInputsRequest(
                        user_app_id=ids,
                        inputs=[
                            resources_pb2.Input(id="held", data=resources_pb2.Data(image=image))
                        ],
                    ),
                    metadata=client.auth(pat),
                )
            )
        finally:
            first.process.kill()  # a crash: no graceful shutdown
            first.process.wait(10)
        gate.set()
        second = ServerProcess(data_dir=tmp_path, database_url=None, extra_env=env).start()
        try:
            client = Client("grpc", make_stub(second, "grpc"))
            deadline = time.monotonic() + 20
            while True:
                got = ok(
                    client.stub.GetInput(
                        service_pb2.GetInputRequest(user_app_id=ids, input_id="held"),
                        metadata=client.auth(pat),
                    )
                )
                if got.input.status.code != codes.INPUT_DOWNLOAD_PENDING or (
                    time.monotonic() > deadline
                ):
                    break
                time.sleep(0.2)
            assert got.input.status.code == codes.INPUT_DOWNLOAD_SUCCESS, got.input.status
            assert got.input.data.image.image_info.width == 3
        finally:
            assert second.stop() == 0, second.log()
