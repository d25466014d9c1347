"""How a caller stands to the owner of the app a request names, looked up and cached.

Evicted through the change log (subject `app`), like credentials, so a visibility change
takes effect within the same bound as a revocation.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import Engine

from scopegate.auth.policy import Relation, Target
from scopegate.auth.principal import Principal
from scopegate.store import apps

PUBLIC = 50


class RelationResolver:
    def __init__(self, engine: Engine, *, ttl_seconds: float = 300.0) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        # (caller user id, owner user id, app id) -> (relation, loaded at)
        self._cache: dict[tuple[str, str, str], tuple[Relation, float]] = {}

    async def relation(self, principal: Principal, target: Target) -> Relation:
        key = (principal.user_id, target.user_id, target.app_id)
        cached = self._cache.get(key)
        mono = time.monotonic()
        if cached is not None and mono - cached[1] <= self._ttl:
            return cached[0]
        relation = await asyncio.to_thread(self._load, target)
        self._cache[key] = (relation, mono)
        return relation

    def _load(self, target: Target) -> Relation:
        if not target.app_id:
            return Relation.NONE
        with self._engine.connect() as conn:
            app = apps.get(conn, target.user_id, target.app_id)
        if app is not None and app.visibility == PUBLIC:
            return Relation.PUBLIC
        return Relation.NONE

    def evict_app(self, owner_user_id: str, app_id: str) -> None:
        for key in [k for k in self._cache if k[1] == owner_user_id and k[2] == app_id]:
            del self._cache[key]
