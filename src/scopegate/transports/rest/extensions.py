"""REST routes outside the Clarifai contract: login, logout, and key roll.

Login answers the shape Clarifai's portal API uses: `{"status", "v2_user_id",
"session_token"}`. Roll goes through the one dispatch path, authorized as PatchKeys.
"""

from __future__ import annotations

import asyncio

from clarifai_grpc.grpc.api import resources_pb2
from starlette.requests import Request
from starlette.responses import Response

from scopegate.auth.principal import CredentialKind
from scopegate.contract.status import ApiError, C, http_status, success
from scopegate.dispatch import Call, Dispatcher
from scopegate.handlers.key_roll import AUTHORIZED_AS, ROLL
from scopegate.services.login import LoginService
from scopegate.transports.rest.endpoint import (
    BadRequestError,
    json_response,
    read_json_body,
    status_only,
    to_json_dict,
    with_retry_after,
)


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
            return status_only(ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", str(exc)))
        except ApiError as error:
            return status_only(error, request_id)
        return json_response(
            {
                "status": to_json_dict(success(request_id)),
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
            return with_retry_after(status_only(error, request_id), error)
        self._dispatcher.authenticator.evict(principal.credential_id)
        return json_response({"status": to_json_dict(success(request_id))})

    async def roll(self, request: Request) -> Response:
        spec = self._dispatcher.services.catalog.methods[AUTHORIZED_AS]
        try:
            body = await read_json_body(request)
            grace = body.get("grace_seconds", 0)
            if not isinstance(grace, int | float) or isinstance(grace, bool):
                raise BadRequestError("grace_seconds must be a number of seconds.")
        except BadRequestError as exc:
            return status_only(ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", str(exc)))
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
        )
        response, error = await self._dispatcher.dispatch(call)
        code = 200 if error is None else (error.http_status or http_status(error.code))
        return with_retry_after(json_response(response, code), error)
