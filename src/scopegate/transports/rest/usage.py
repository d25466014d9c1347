"""The usage routes: `GET /scopegate/v1/users/{user_id}/keys/{key_id}/usage` (authorized as
GetKey) and `.../apps/{app_id}/usage` (as GetApp), through the one dispatch path; the
answer is `{"status", "usage"}` (handlers/usage.py)."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2
from starlette.requests import Request
from starlette.responses import Response

from scopegate.contract.extensions import ANSWER
from scopegate.dispatch import Call, Dispatcher
from scopegate.handlers import Handler
from scopegate.handlers.usage import (
    APP_AUTHORIZED_AS,
    APP_USAGE,
    KEY_AUTHORIZED_AS,
    KEY_ID,
    KEY_USAGE,
    QUERY,
)
from scopegate.transports.rest.codec import message_to_dict
from scopegate.transports.rest.errors import json_response

KEY_PATH = "/scopegate/v1/users/{user_id}/keys/{key_id}/usage"
APP_PATH = "/scopegate/v1/users/{user_id}/apps/{app_id}/usage"
_QUERY_NAMES = ("from", "to", "granularity")


class UsageRoutes:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def key_usage(self, request: Request) -> Response:
        extras = {KEY_ID: request.path_params["key_id"]}
        return await self._answer(request, KEY_AUTHORIZED_AS, KEY_USAGE, "", extras)

    async def app_usage(self, request: Request) -> Response:
        app_id = request.path_params["app_id"]
        return await self._answer(request, APP_AUTHORIZED_AS, APP_USAGE, app_id, {})

    async def _answer(
        self, request: Request, method: str, handler: Handler, app_id: str, extras: dict
    ) -> Response:
        spec = self._dispatcher.services.catalog.methods[method]
        ids = resources_pb2.UserAppIDSet(user_id=request.path_params["user_id"], app_id=app_id)
        query = request.query_params
        extras[QUERY] = {name: query[name] for name in _QUERY_NAMES if name in query}
        call = Call(
            spec=spec,
            request=spec.input_type(user_app_id=ids),
            authorization=request.headers.get("authorization"),
            session_token=request.headers.get("x-clarifai-session-token"),
            peer=request.client.host if request.client else "",
            handler=handler,
            extras=extras,
        )
        response, error = await self._dispatcher.dispatch(call)
        body = message_to_dict(response)
        if error is None:
            body.update(call.extras.get(ANSWER) or {})
        return json_response(body, error)
