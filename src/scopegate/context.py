"""What handlers receive: the server's shared services and one request's facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from scopegate.auth.policy import Target
from scopegate.auth.principal import Principal
from scopegate.auth.scopes import ScopeAlgebra
from scopegate.auth.tokens import SecretHasher
from scopegate.contract.catalog import Catalog, MethodSpec
from scopegate.contract.status import does_not_exist
from scopegate.media.settings import MediaSettings

if TYPE_CHECKING:
    from scopegate.runners.registry import RunnerPool


def _nobody_else(_principal: Principal, _spec: MethodSpec, _target: Target) -> None:
    raise does_not_exist()


@dataclass(slots=True)
class Services:
    engine: Engine
    hasher: SecretHasher
    catalog: Catalog
    scopes: ScopeAlgebra
    # Drops a credential (public id, or `user:<id>`) from this process's cache at once.
    evict: Callable[[str], None] = lambda _subject: None
    # Drops cached relations to an app (owner user id, app id) at once.
    evict_app: Callable[[str, str], None] = lambda _owner, _app: None
    # Drops cached relations to every app of an owner (organization changes) at once.
    evict_owner: Callable[[str], None] = lambda _owner: None
    media: MediaSettings = field(default_factory=MediaSettings)
    # Queues the background download of an input's URL (input pk, url); set by the server.
    schedule_download: Callable[[int, str], None] = lambda _pk, _url: None
    # Loaded model runners (PostModelOutputs); None where nothing predicts (the CLI).
    runners: RunnerPool | None = None
    # Raises unless the principal may call the method on the app the target names; set by
    # the dispatcher. Until then nobody but an owner passes (see `authorize_app`).
    authorize_app: Callable[[Principal, MethodSpec, Target], None] = _nobody_else


@dataclass(slots=True)
class RequestContext:
    services: Services
    spec: MethodSpec
    principal: Principal | None
    target: Target
    request_id: str
    peer: str = ""
    extras: dict = field(default_factory=dict)

    def authorize_app(self, app_id: str) -> None:
        """Refuse unless the caller may call this method on `app_id` of the target's owner
        too: every app a handler acts on is the authorized target or authorized itself."""
        principal, owner = self.principal, self.target.user_id
        if principal is None:
            raise does_not_exist()
        if principal.app is None and principal.user_id == owner:
            return  # the owner: the account-level authorization covered all its apps
        self.services.authorize_app(principal, self.spec, Target(owner, app_id))

    def actor(self):
        from scopegate.services.accounts import Actor

        principal = self.principal
        return Actor(
            user_id=principal.user_id if principal else "",
            credential_kind=principal.kind.value if principal else "",
            credential_id=principal.credential_id if principal else "",
            client_address=self.peer,
            request_id=self.request_id,
        )
