"""What handlers receive: the server's shared services and one request's facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from scopegate.auth.policy import Target
from scopegate.auth.principal import Principal
from scopegate.auth.scopes import ScopeAlgebra
from scopegate.auth.tokens import SecretHasher
from scopegate.catalog import Catalog, MethodSpec


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


@dataclass(slots=True)
class RequestContext:
    services: Services
    spec: MethodSpec
    principal: Principal | None
    target: Target
    request_id: str
    peer: str = ""
    extras: dict = field(default_factory=dict)

    def actor(self):
        from scopegate.accounts import Actor

        principal = self.principal
        return Actor(
            user_id=principal.user_id if principal else "",
            credential_kind=principal.kind.value if principal else "",
            credential_id=principal.credential_id if principal else "",
            client_address=self.peer,
            request_id=self.request_id,
        )
