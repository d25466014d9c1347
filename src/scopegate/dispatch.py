"""The one request path: authenticate → authorize → handler, for every transport."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from sqlalchemy.exc import DataError, OperationalError

from scopegate import request_ids
from scopegate.access.address_throttle import AuthFailureThrottle
from scopegate.access.authentication import Authenticator, Presented
from scopegate.access.decisions import Allowed, DecisionCache, cacheable
from scopegate.access.limiter import CredentialLimits, Limiter
from scopegate.access.org_policies import OrgPolicies
from scopegate.access.quota import QuotaLeases
from scopegate.access.relations import RelationResolver
from scopegate.auth.policy import (
    Grant,
    Relation,
    Target,
    authorize,
    effective_scopes,
    is_read_scope,
    needs_lookup,
    resolve_target,
    standing_target,
)
from scopegate.auth.principal import Principal
from scopegate.context import RequestContext, Services
from scopegate.contract.catalog import NO_AUTH, MethodSpec
from scopegate.contract.status import ApiError, C, set_success
from scopegate.handlers import Handler
from scopegate.request_limits import too_many_items
from scopegate.store.database import is_lock_wait

log = logging.getLogger("scopegate.dispatch")

_NUL = "\x00"
_ZERO_BYTE = b"\x00"
_STRING = FieldDescriptor.TYPE_STRING


def nul_field(message: Message, prefix: str = "") -> str | None:
    """The dotted path of the first string in `message` (map keys included) that holds a
    NUL character, or None. No stored value may hold one (PostgreSQL text cannot), so such
    a request is refused before anything reads it, the same on every database."""
    for described, value in message.ListFields():
        path = prefix + described.name
        entry = described.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            for key, item in value.items():
                where = f"{path}[{key!r}]"
                if isinstance(key, str) and _NUL in key:
                    return where
                if value_field.message_type is not None:
                    found = nul_field(item, where + ".")
                    if found:
                        return found
                elif isinstance(item, str) and _NUL in item:
                    return where
        elif described.is_repeated:
            for index, item in enumerate(value):
                if entry is not None:
                    found = nul_field(item, f"{path}[{index}].")
                    if found:
                        return found
                elif described.type == _STRING and _NUL in item:
                    return f"{path}[{index}]"
        elif entry is not None:
            found = nul_field(value, path + ".")
            if found:
                return found
        elif described.type == _STRING and _NUL in value:
            return path
    return None


def _as_status(spec: MethodSpec, exc: Exception, request_id: str) -> ApiError:
    """The status a failure answers with: a refusal as raised; a value the database cannot
    hold that no check caught (one too long for its column) is the caller's to fix; a lock
    wait past the timeout is worth a retry; anything else is a bug, logged."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DataError):
        log.info("%s refused by the database (request %s): %s", spec.name, request_id, exc)
        return ApiError(
            C.CONN_INVALID_REQUEST,
            "Invalid request",
            "A value in the request is too long or cannot be stored.",
        )
    if isinstance(exc, OperationalError) and is_lock_wait(exc):
        log.warning("%s: lock wait timed out (request %s): %s", spec.name, request_id, exc)
        return ApiError(
            C.TRY_AGAIN,
            "Database busy, try again",
            "The database was busy with other changes for too long; retry the request.",
        )
    log.error("internal error in %s (request %s)", spec.name, request_id, exc_info=exc)
    return ApiError(C.FAILURE, "Internal error", f"Request id {request_id}.")


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
    # The credentials already read off the request by the transport, if it did.
    presented: Presented | None = None
    # For the observers and the request id: which transport carried it ("grpc", "rest",
    # "portal"), the client's sanitized id prefix, and when the transport took it
    # (time.perf_counter(); 0: when dispatch began).
    transport: str = ""
    request_id_prefix: str = ""
    received: float = 0.0


@dataclass(slots=True)
class Outcome:
    """What one request came to, for the observers (metrics, access log, usage counts,
    refusal records): filled in as the request passes each stage."""

    call: Call
    request_id: str
    started: float  # time.perf_counter() when dispatch began
    # The last stage reached: "request" (shape checks), "authentication", "authorization",
    # "limits" (the credential's rates, quota, addresses), "handler". A refusal's stage
    # says which layer refused.
    stage: str = "request"
    principal: Principal | None = None
    target: Target | None = None
    # Set once authorized: the caller's standing toward the target and its effective scopes.
    relation: Relation | None = None
    scopes: frozenset[str] | None = None
    error: ApiError | None = None  # None: the call succeeded
    finished: float = 0.0
    code: int = 0  # the status code answered (a handler may answer a failure in band)


class Observer(Protocol):
    """Told of every outcome after the answer is made; must not block or raise."""

    def observe(self, outcome: Outcome) -> None: ...


class Dispatcher:
    def __init__(
        self,
        services: Services,
        authenticator: Authenticator,
        handlers: Mapping[str, Handler],
        relations: RelationResolver,
        auth_failures: AuthFailureThrottle | None = None,
        observers: Sequence[Observer] = (),
        limiter: Limiter | None = None,
    ) -> None:
        self.services = services
        # Per-credential limits (access/limiter.py), loaded with each credential: an
        # unlimited request pays one attribute read and one None test.
        self.limiter = limiter or Limiter(QuotaLeases(services.engine))
        services.quota_held = self.limiter.quota.held
        self.org_policies: OrgPolicies | None = None  # set by the server (access/org_policies.py)
        self.observers = list(observers)
        self.authenticator = authenticator
        self.relations = relations
        self.auth_failures = auth_failures or AuthFailureThrottle(0, 1.0, 0.0)  # off
        self._handlers = handlers
        # Decisions rest on both caches: any eviction in either makes them stale.
        self._decisions = DecisionCache(authenticator, relations)
        self._request_ids = itertools.count(1)
        self._request_prefix = os.urandom(4).hex()
        # What anyone may do on a PUBLIC app (a caller's effective scopes there).
        self._reads = frozenset(filter(is_read_scope, services.scopes.names))

    def new_request_id(self, prefix: str = "") -> str:
        """A new id, after the client's (sanitized) prefix when it sent one; it becomes the
        id of the request being served, which every log line of it carries."""
        own = f"sg-{self._request_prefix}-{next(self._request_ids)}"
        request_id = f"{prefix}-{own}" if prefix else own
        request_ids.current.set(request_id)
        return request_id

    async def dispatch(self, call: Call) -> tuple[Message, ApiError | None]:
        """The response message (status always set), and the error when it is one."""
        spec = call.spec
        request_id = self.new_request_id(call.request_id_prefix)
        outcome = Outcome(call, request_id, call.received or time.perf_counter())
        try:
            response = await self._dispatch(call, outcome)
        except Exception as exc:  # every failure becomes a Clarifai status
            error = outcome.error = _as_status(spec, exc, request_id)
            response = self.error_response(spec, error, request_id)
            outcome.code = error.code
            self._tell(outcome)
            return response, error
        if not response.HasField("status"):
            set_success(response.status, request_id)
        elif not response.status.req_id:
            response.status.req_id = request_id
        outcome.code = response.status.code
        self._tell(outcome)
        return response, None

    def refused(self, call: Call, error: ApiError, request_id: str, stage: str) -> None:
        """Tell the observers of a request a transport refused before dispatch (garbage
        credentials at the REST gate, an undecodable body), as `stage` refused it."""
        if self.observers:
            started = call.received or time.perf_counter()
            outcome = Outcome(call, request_id, started, stage=stage, error=error)
            outcome.code = error.code
            self._tell(outcome)

    @property
    def decisions(self) -> DecisionCache:
        """The remembered allows (their hit and miss counts are metrics)."""
        return self._decisions

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """Each method's handler (the metrics tell forwarded ones apart)."""
        return self._handlers

    def _tell(self, outcome: Outcome) -> None:
        if not self.observers:
            return
        outcome.finished = time.perf_counter()
        for observer in self.observers:
            try:
                observer.observe(outcome)
            except Exception:  # an observer's bug must not turn an answer into a failure
                log.exception("observer %r failed (request %s)", observer, outcome.request_id)

    async def _dispatch(self, call: Call, outcome: Outcome) -> Message:
        spec, request_id = call.spec, outcome.request_id
        # A NUL in any string serializes as a zero byte: most requests have none at all, and
        # looking for one byte is far cheaper than walking every field.
        bad = nul_field(call.request) if _ZERO_BYTE in call.request.SerializeToString() else None
        if bad:
            raise ApiError(
                C.CONN_BAD_REQUEST_FORMAT,
                "Bad request format",
                f"Field '{bad}' contains a NUL character (U+0000); no value may contain one.",
            )
        too_many = too_many_items(call.request)  # before anything reads the database
        if too_many is not None:
            raise too_many
        ids = call.request.user_app_id if spec.has_user_app_id else None
        user_id, app_id = (ids.user_id, ids.app_id) if ids is not None else ("", "")
        relation: Relation | None = None
        scopes: frozenset[str] = frozenset()
        limits: CredentialLimits | None = None
        if spec.auth_type is NO_AUTH:
            principal, target = None, Target(user_id, app_id)
        else:
            outcome.stage = "authentication"
            presented = call.presented  # the REST gate has read them already
            if presented is None:
                presented = await self._present(call)
            key = (presented.cache_key, presented.from_session_header, spec, user_id, app_id)
            admitted = self._remembered(key, presented)
            principal, allowed = admitted or await self._admit(
                call, key, presented, user_id, app_id, outcome
            )
            target, relation, scopes = allowed.target, allowed.relation, allowed.scopes
            outcome.relation, outcome.scopes = relation, scopes
            # The limits of the very credential this request was admitted with: an eviction
            # while it awaited (a change to the key, from any process) cannot unlimit it.
            limits = allowed.credential.limits
            # Organizations' token policies, on their apps (never on managing the account):
            # on every request, remembered allows included.
            policies = self.org_policies
            if policies is not None and target.app_id and target.user_id in policies.governed:
                outcome.stage, outcome.principal, outcome.target = "policy", principal, target
                policies.check(principal, target)
        if limits is not None:
            # After authorization: a refused request spends nothing; before the handler (and
            # any forwarding upstream): a request over its limits goes nowhere.
            outcome.stage, outcome.principal, outcome.target = "limits", principal, target
            await self.limiter.admit(limits, spec.name, call.peer, call.extras)
        outcome.stage, outcome.principal, outcome.target = "handler", principal, target
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
            authorize=self.authorize_named_app,
            relation=relation,
            scopes=scopes,
        )
        if handler.blocking:
            return await asyncio.to_thread(handler.fn, context, call.request)
        if handler.awaits:
            return await handler.fn(context, call.request)
        return handler.fn(context, call.request)

    async def _present(self, call: Call) -> Presented:
        try:
            return self.authenticator.present(call.authorization, call.session_token)
        except ApiError as error:
            raise await self.auth_failures.refuse(call.peer, error) from None

    def _remembered(self, key: tuple, presented: Presented) -> tuple[Principal, Allowed] | None:
        """The caller and the allow (target, relation, effective scopes) made before for
        `key` (credential, method, named ids) and still current, checked for this use; None
        for anything else, which `_admit` then works out (or refuses, with the failure
        counted). Synchronous: most requests need no more than this."""
        allowed = self._decisions.get(key, time.monotonic())
        if allowed is None:
            return None
        try:
            principal = self.authenticator.admit(allowed.credential, presented.from_session_header)
        except ApiError:
            return None  # expired since: refused by `_admit`
        return principal, allowed

    async def _admit(
        self,
        call: Call,
        key: tuple,
        presented: Presented,
        user_id: str,
        app_id: str,
        outcome: Outcome,
    ) -> tuple[Principal, Allowed]:
        """The caller and what it is allowed (the target it may act on, its standing there
        and its effective scopes), or the refusal: authentication, then the policy. An allow
        is remembered under `key` for `_remembered`."""
        authenticator = self.authenticator
        since = self._decisions.generation()
        known: Principal | None = None
        try:
            credential = await authenticator.credential(presented)
            known = credential.principal
            principal = authenticator.admit(credential, presented.from_session_header)
        except ApiError as error:
            # A credential found but refused for this use (expired): the observers may name
            # it (its usage counts show the attempts), the stage says it was refused.
            outcome.principal = known
            raise await self.auth_failures.refuse(call.peer, error) from None
        target = resolve_target(principal, user_id, app_id)
        outcome.stage, outcome.principal, outcome.target = "authorization", principal, target
        fresh_until = credential.loaded_at + authenticator.ttl
        standings: list[tuple[Relation, Grant | None]] = [(Relation.OWNER, None)]
        if needs_lookup(principal, target):
            # An account-level method is judged on the caller's standing toward the account,
            # and, where it names an app, toward that app too: both must allow it.
            standings = []
            for where in dict.fromkeys((standing_target(call.spec, target), target)):
                relation, grant, loaded_at = await self.relations.relation(principal, where)
                fresh_until = min(fresh_until, loaded_at + self.relations.ttl)
                standings.append((relation, grant))
        scopes = principal.scopes
        for relation, grant in standings:
            decision = authorize(principal, call.spec, target, relation, grant)
            if not decision.allowed:
                assert decision.error is not None  # a refusal always carries its status
                raise decision.error
            scopes = effective_scopes(scopes, relation, grant, self._reads)
        # The relation reported is the last standing's: toward the app the request names.
        allowed = Allowed(credential, target, fresh_until, relation, scopes)
        if cacheable(user_id, app_id):
            self._decisions.put(key, allowed, since)
        return principal, allowed

    def authorize_named_app(self, principal: Principal, spec: MethodSpec, target: Target) -> None:
        """Raise the refusal unless `principal` may call `spec` on the app `target` names,
        as if the request had named it in `user_app_id` (for an account-level method: the
        caller's standing on the account), and on the app itself too: for handlers acting on
        an app their request names elsewhere (a body's `apps[].id`, `keys[].apps`). Runs in
        the handler's thread."""
        for where in dict.fromkeys((standing_target(spec, target), target)):
            relation, grant = Relation.OWNER, None
            if needs_lookup(principal, where):
                relation, grant, _ = self.relations.relation_now(principal, where)
            decision = authorize(principal, spec, target, relation, grant)
            if not decision.allowed:
                assert decision.error is not None  # a refusal always carries its status
                raise decision.error

    async def authenticate(
        self, authorization: str | None, session_token: str | None, peer: str
    ) -> Principal:
        """The caller's principal; a failure counts against the caller's address and may
        come back throttled, late (see auth_throttle.py)."""
        try:
            return await self.authenticator.authenticate(authorization, session_token)
        except ApiError as error:
            raise await self.auth_failures.refuse(peer, error) from None

    @staticmethod
    def error_response(spec: MethodSpec, error: ApiError, request_id: str) -> Message:
        response = error.response
        if response is None:
            response = spec.output_type()
        else:
            response.ClearField("status")  # the error's status replaces any set before
        error.fill(response.status, request_id)
        return response
