"""Creating apps through the API, for tests of the resources that live in them."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from tests.support.api import me, ok
from tests.support.clients import Client, new_id


def new_app(client: Client, pat: str, *, public: bool = False) -> tuple[str, str]:
    """A new app of the PAT's user: (app id, its default API key)."""
    app_id = new_id("app")
    visibility = resources_pb2.Visibility(
        gettable=resources_pb2.Visibility.PUBLIC if public else resources_pb2.Visibility.PRIVATE
    )
    created = ok(
        client.stub.PostApps(
            service_pb2.PostAppsRequest(
                user_app_id=me(), apps=[resources_pb2.App(id=app_id, visibility=visibility)]
            ),
            metadata=client.auth(pat),
        )
    )
    return app_id, created.apps[0].metadata["default_api_key"]
