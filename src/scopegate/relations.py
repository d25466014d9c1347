"""How a caller stands to the owner of the app a request names, looked up and cached.

Evicted through the change log (subject `app`), like credentials, so a visibility change
takes effect within the same bound as a revocation.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import Engine

from scopegate.auth.policy import Grant, Relation, Target
from scopegate.auth.principal import Principal
from scopegate.store import apps, collaborators

PUBLIC = 50


class RelationResolver:
    def __init__(self, engine: Engine, *, ttl_seconds: float = 300.0) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        # (caller user id, owner user id, app id) -> (relation, grant, loaded at)
        self._cache: dict[tuple[str, str, str], tuple[Relation, Grant | None, float]] = {}
        self.store_lookups = 0

    async def relation(self, principal: Principal, target: Target) -> tuple[Relation, Grant | None]:
        key = (principal.user_id, target.user_id, target.app_id)
        cached = self._cache.get(key)
        mono = time.monotonic()
        if cached is not None and mono - cached[2] <= self._ttl:
            return cached[0], cached[1]
        self.store_lookups += 1
        relation, grant = await asyncio.to_thread(self._load, principal.user_id, target)
        self._cache[key] = (relation, grant, mono)
        return relation, grant

    def _load(self, caller: str, target: Target) -> tuple[Relation, Grant | None]:
        if not target.app_id:
            return Relation.NONE, None
        with self._engine.connect() as conn:
            app = apps.get(conn, target.user_id, target.app_id)
            if app is None:
                return Relation.NONE, None
            granted = collaborators.grant(conn, caller, target.user_id, target.app_id)
        public = app.visibility == PUBLIC
        if granted is not None:
            return Relation.COLLABORATOR, Grant(
                frozenset(granted.scopes), frozenset(granted.endpoints), also_public=public
            )
        return (Relation.PUBLIC if public else Relation.NONE), None

    def evict_app(self, owner_user_id: str, app_id: str) -> None:
        for key in [k for k in self._cache if k[1] == owner_user_id and k[2] == app_id]:
            del self._cache[key]
