"""The one request path: authenticate → authorize → handler, for every transport."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.message import Message

from scopegate.auth.policy import Relation, authorize, needs_lookup, resolve_target
from scopegate.authentication import Authenticator
from scopegate.catalog import AuthType, MethodSpec
from scopegate.context import RequestContext, Services
from scopegate.handlers import Handler
from scopegate.relations import RelationResolver
from scopegate.status import ApiError, C, success

log = logging.getLogger("scopegate.dispatch")


@dataclass(slots=True)
class Call:
    """A decoded request, whichever transport it came on."""

    spec: MethodSpec
    request: Message
    authorization: str | None
    session_token: str | None
    peer: str
    # Extension routes (outside the Clarifai contract) name their own handler; they are
    # authorized as the catalog method they extend.
    handler: Handler | None = None
    extras: dict = field(default_factory=dict)


class Dispatcher:
    def __init__(
        self,
        services: Services,
        authenticator: Authenticator,
        handlers: Mapping[str, Handler],
        relations: RelationResolver,
    ) -> None:
        self.services = services
        self.authenticator = authenticator
        self.relations = relations
        self._handlers = handlers
        self._request_ids = itertools.count(1)
        self._request_prefix = os.urandom(4).hex()

    def new_request_id(self) -> str:
        return f"sg-{self._request_prefix}-{next(self._request_ids)}"

    async def dispatch(self, call: Call) -> tuple[Message, ApiError | None]:
        """The response message (status always set), and the error when it is one."""
        spec = call.spec
        request_id = self.new_request_id()
        try:
            response = await self._dispatch(call, request_id)
        except ApiError as error:
            return self.error_response(spec, error, request_id), error
        except Exception:
            log.exception("internal error in %s (request %s)", spec.name, request_id)
            error = ApiError(C.FAILURE, "Internal error", f"Request id {request_id}.")
            return self.error_response(spec, error, request_id), error
        if not response.HasField("status"):
            response.status.CopyFrom(success(request_id))
        elif not response.status.req_id:
            response.status.req_id = request_id
        return response, None

    async def _dispatch(self, call: Call, request_id: str) -> Message:
        spec = call.spec
        principal = None
        if spec.auth_type is not AuthType.NO_AUTH:
            principal = await self.authenticator.authenticate(
                call.authorization, call.session_token
            )
        ids = call.request.user_app_id if spec.has_user_app_id else None
        target = resolve_target(principal, ids.user_id if ids else "", ids.app_id if ids else "")
        if principal is not None:
            relation, grant = Relation.OWNER, None
            if needs_lookup(principal, target):
                relation, grant = await self.relations.relation(principal, target)
            decision = authorize(principal, spec, target, relation, grant)
            if not decision.allowed:
                raise decision.error
        handler = call.handler or self._handlers.get(spec.name)
        if handler is None:
            raise ApiError(
                C.NOT_IMPLEMENTED,
                "Not implemented",
                f"scopegate does not implement {spec.full_name} yet.",
            )
        context = RequestContext(
            services=self.services,
            spec=spec,
            principal=principal,
            target=target,
            request_id=request_id,
            peer=call.peer,
            extras=call.extras,
        )
        if handler.blocking:
            return await asyncio.to_thread(handler.fn, context, call.request)
        return handler.fn(context, call.request)

    @staticmethod
    def error_response(spec: MethodSpec, error: ApiError, request_id: str) -> Message:
        response = error.response if error.response is not None else spec.output_type()
        response.status.CopyFrom(error.to_status(request_id))
        return response
