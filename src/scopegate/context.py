"""What handlers receive: the server's shared services and one request's facts."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from scopegate.access.evictions import Evictions
from scopegate.auth.policy import Relation, Target
from scopegate.auth.principal import Principal
from scopegate.auth.scopes import ScopeAlgebra
from scopegate.auth.tokens import SecretHasher
from scopegate.contract.catalog import Catalog, MethodSpec
from scopegate.contract.status import does_not_exist
from scopegate.media.settings import MediaSettings
from scopegate.services import change_log
from scopegate.services.audit import Actor
from scopegate.services.collaborators import GrantNames

if TYPE_CHECKING:
    from scopegate.access.refusals import RefusalRecorder
    from scopegate.runners.registry import RunnerPool

# Raises the refusal unless the principal may call the method on the app the target names.
AuthorizeApp = Callable[[Principal, MethodSpec, Target], None]


def _nobody_else(_principal: Principal, _spec: MethodSpec, _target: Target) -> None:
    raise does_not_exist()


@dataclass(slots=True)
class Services:
    engine: Engine
    hasher: SecretHasher
    catalog: Catalog
    scopes: ScopeAlgebra
    # This process's caches register here when built; a committed `transaction` (and the
    # change watcher, for other processes' changes) evicts through it.
    evictions: Evictions = field(default_factory=Evictions)
    media: MediaSettings = field(default_factory=MediaSettings)
    # Queues the background download of an input's URL (input pk, url); set by the server.
    schedule_download: Callable[[int, str], None] = lambda _pk, _url: None
    # Loaded model runners (PostModelOutputs); None where nothing predicts (the CLI).
    runners: RunnerPool | None = None
    # Refusal records not yet written (access/refusals.py); None where none are kept.
    refusals: RefusalRecorder | None = None
    # A key's (by pk) usage quota this process holds in leases, not yet spent (set by the
    # dispatcher, access/quota.py): what a key's remaining count adds to the stored one.
    quota_held: Callable[[int], int] = lambda _pk: 0

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction: what the services change in it leaves this process's caches
        when it commits (and every other process's within the change-log poll)."""
        return change_log.transaction(self.engine, self.evictions.apply)

    def grant_names(self) -> GrantNames:
        return GrantNames(self.scopes, self.catalog)


@dataclass(slots=True)
class RequestContext:
    services: Services
    spec: MethodSpec
    principal: Principal | None
    target: Target
    request_id: str
    peer: str = ""
    extras: dict = field(default_factory=dict)
    # Set by the dispatcher; until then nobody but an owner passes `authorize_app`.
    authorize: AuthorizeApp = _nobody_else
    # How the caller stands to the target (None for NoAuth methods) and its effective scopes
    # there (its credential's, after a collaborator or role grant): what a forwarded call
    # tells the upstream.
    relation: Relation | None = None
    scopes: frozenset[str] = frozenset()

    def authorize_app(self, app_id: str, owner: str = "") -> None:
        """Refuse unless the caller may call this method on `app_id` of `owner` (by default
        the target's owner) too: every app a handler acts on is the authorized target or
        authorized itself."""
        principal, owner = self.principal, owner or self.target.user_id
        if principal is None:
            raise does_not_exist()
        if principal.app is None and principal.user_id == owner and principal.resources is None:
            return  # the owner: the account-level authorization covered all its apps
        self.authorize(principal, self.spec, Target(owner, app_id))

    def actor(self) -> Actor:
        principal = self.principal
        return Actor(
            user_id=principal.user_id if principal else "",
            credential_kind=principal.kind.value if principal else "",
            credential_id=principal.credential_id if principal else "",
            client_address=self.peer,
            request_id=self.request_id,
        )
