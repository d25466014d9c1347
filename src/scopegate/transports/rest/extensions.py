"""REST routes outside the dispatch of a matched route: login, logout, and key roll.

Login answers the shape Clarifai's portal API uses: `{"status", "v2_user_id",
"session_token"}`. Roll goes through the one dispatch path, authorized as PatchKeys.
"""

from __future__ import annotations

import asyncio

from clarifai_grpc.grpc.api import resources_pb2
from starlette.requests import Request
from starlette.responses import Response

from scopegate.auth.principal import CredentialKind
from scopegate.contract.status import ApiError, C, success
from scopegate.dispatch import Call, Dispatcher
from scopegate.handlers.key_roll import AUTHORIZED_AS, ROLL
from scopegate.request_ids import PREFIX_HEADER, sanitized_prefix
from scopegate.services.login import LoginService
from scopegate.transports.rest.codec import message_to_dict
from scopegate.transports.rest.decode import BadRequestError, read_json_body
from scopegate.transports.rest.errors import bad_request_format, error_response, json_response


def _peer(request: Request) -> str:
    return request.client.host if request.client else ""


class Extensions:
    def __init__(self, dispatcher: Dispatcher, login_service: LoginService) -> None:
        self._dispatcher = dispatcher
        self._login = login_service

    async def login(self, request: Request) -> Response:
        request_id = self._dispatcher.new_request_id()
        try:
            body = await read_json_body(request)
            email, password = body.get("email"), body.get("password")
            if not isinstance(email, str) or not isinstance(password, str):
                raise BadRequestError('Send {"email": "...", "password": "..."}.')
            user_id, token = await asyncio.to_thread(
                self._login.login, email, password, _peer(request), request_id
            )
        except BadRequestError as exc:
            return error_response(bad_request_format(str(exc)))
        except ApiError as error:
            return error_response(error, request_id)
        return json_response(
            {
                "status": message_to_dict(success(request_id)),
                "v2_user_id": user_id,
                "session_token": token,
            }
        )

    async def logout(self, request: Request) -> Response:
        request_id = self._dispatcher.new_request_id()
        try:
            principal = await self._dispatcher.authenticate(
                None, request.headers.get("x-clarifai-session-token"), _peer(request)
            )
            if principal.kind is not CredentialKind.SESSION:
                raise ApiError(C.CONN_INVALID_REQUEST, "Invalid request", "Not a session.")
            await asyncio.to_thread(self._login.logout, principal, _peer(request), request_id)
        except ApiError as error:
            return error_response(error, request_id)
        return json_response({"status": message_to_dict(success(request_id))})

    async def roll(self, request: Request) -> Response:
        spec = self._dispatcher.services.catalog.methods[AUTHORIZED_AS]
        try:
            body = await read_json_body(request)
            grace = body.get("grace_seconds", 0)
            if not isinstance(grace, int | float) or isinstance(grace, bool):
                raise BadRequestError("grace_seconds must be a number of seconds.")
        except BadRequestError as exc:
            return error_response(bad_request_format(str(exc)))
        message = spec.input_type(
            user_app_id=resources_pb2.UserAppIDSet(user_id=request.path_params["user_id"])
        )
        call = Call(
            spec=spec,
            request=message,
            authorization=request.headers.get("authorization"),
            session_token=request.headers.get("x-clarifai-session-token"),
            peer=_peer(request),
            handler=ROLL,
            extras={"key_id": request.path_params["key_id"], "grace_seconds": grace},
            transport="rest",
            request_id_prefix=sanitized_prefix(request.headers.get(PREFIX_HEADER)),
        )
        response, error = await self._dispatcher.dispatch(call)
        return json_response(message_to_dict(response), error)
