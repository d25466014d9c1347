"""How a caller stands to the owner of the app a request names, looked up and cached.

Evicted through the change log (subject `app` for one app, `org` for an organization's
members and teams), like credentials, so a visibility, membership or grant change takes
effect within the same bound as a revocation.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import NamedTuple

from sqlalchemy import Engine

from scopegate.access.evictions import Evictions
from scopegate.access.single_flight import SingleFlight
from scopegate.auth.policy import Grant, Relation, Target
from scopegate.auth.principal import Principal
from scopegate.auth.roles import RoleScopes, TeamRole, parse_org_role, parse_team_role, role_scopes
from scopegate.contract.visibility import ORG, PUBLIC
from scopegate.store import apps, collaborators, orgs
from scopegate.store.schema import ID_LENGTH


class Standing(NamedTuple):
    """How a caller stands to a target, and when that was read (monotonic)."""

    relation: Relation
    grant: Grant | None
    loaded_at: float


# What a target no stored row can match stands as: an id longer than the column.
_NOWHERE = Standing(Relation.NONE, None, float("inf"))


# A cached standing is reloaded after this long even if no change evicted it.
CACHE_SECONDS = 300.0


class RelationResolver:
    def __init__(
        self,
        engine: Engine,
        *,
        ttl_seconds: float = CACHE_SECONDS,
        roles: RoleScopes | None = None,
        capacity: int = 65_536,
        evictions: Evictions | None = None,
    ) -> None:
        self._engine = engine
        self._roles = roles or role_scopes()
        self.ttl = ttl_seconds
        # (caller user id, owner user id, app id) -> standing. Any PAT may name any ids, so
        # the cache is bounded: emptied when full (misses cost a query, never correctness).
        self._cache: dict[tuple[str, str, str], Standing] = {}
        self._capacity = capacity
        # Answers from the cache, and lookups in the store (the misses); plain counts read
        # by the metrics, nothing on the request path but an increment.
        self.hits = 0
        self.store_lookups = 0
        # Concurrent misses on one key share one lookup; an eviction bumps the generation so
        # that a lookup that was in flight when it ran is not cached.
        self._loads: SingleFlight[Standing] = SingleFlight()
        # Moves on every eviction (read by the decision cache; only this class moves it).
        self.generation = 0
        if evictions is not None:
            evictions.register(self)

    async def relation(self, principal: Principal, target: Target) -> Standing:
        key = (principal.user_id, target.user_id, target.app_id)
        mono = time.monotonic()
        known = self._known(key, target, mono)
        if known is not None:
            return known
        load = partial(self._fetch, key, principal.user_id, target, mono)
        return await self._loads.run(key, load)

    def relation_now(self, principal: Principal, target: Target) -> Standing:
        """`relation`, for code already off the event loop (a handler authorizing one more
        app its request names): the cached standing, else one query in this thread."""
        key = (principal.user_id, target.user_id, target.app_id)
        mono = time.monotonic()
        known = self._known(key, target, mono)
        if known is not None:
            return known
        generation = self.generation
        self.store_lookups += 1
        return self._keep(key, Standing(*self._load(principal.user_id, target), mono), generation)

    def _known(self, key: tuple[str, str, str], target: Target, mono: float) -> Standing | None:
        """The standing without a query: cached and fresh, or nowhere for ids longer than
        a row can hold (no query, and nothing cached for them); None: look it up."""
        cached = self._cache.get(key)
        if cached is not None and mono - cached.loaded_at <= self.ttl:
            self.hits += 1
            return cached
        if len(target.user_id) > ID_LENGTH or len(target.app_id) > ID_LENGTH:
            return _NOWHERE
        return None

    async def _fetch(
        self, key: tuple[str, str, str], caller: str, target: Target, mono: float
    ) -> Standing:
        generation = self.generation
        self.store_lookups += 1
        relation, grant = await asyncio.to_thread(self._load, caller, target)
        return self._keep(key, Standing(relation, grant, mono), generation)

    def _keep(self, key: tuple[str, str, str], standing: Standing, generation: int) -> Standing:
        if generation == self.generation:
            # Not kept if an eviction ran meanwhile: the query may have read what it revoked.
            if len(self._cache) >= self._capacity:
                self._cache.clear()
                self.generation += 1  # evicted all: what rested on it is stale
            self._cache[key] = standing
        return standing

    def _load(self, caller: str, target: Target) -> tuple[Relation, Grant | None]:
        with self._engine.connect() as conn:
            role = parse_org_role(orgs.role_of(conn, target.user_id, caller) or "")
            if not target.app_id:
                # Naming a user but no app: only an organization's members stand anywhere.
                if role is None:
                    return Relation.NONE, None
                return Relation.MEMBER, Grant(self._roles.on_org(role), frozenset())
            app = apps.get(conn, target.user_id, target.app_id)
            if app is None:
                return Relation.NONE, None
            granted = collaborators.grant(conn, caller, target.user_id, target.app_id)
            team_roles = orgs.team_roles_on_app(conn, caller, app.pk) if role else []
        public = app.visibility == PUBLIC
        scopes: set[str] = set()
        endpoints: frozenset[str] = frozenset()
        if granted is not None:
            scopes |= set(granted.scopes)
            endpoints = frozenset(granted.endpoints)
        if role is not None:
            scopes |= self._roles.on_org_app(role)
            for team_role in team_roles:
                scopes |= self._roles.on_team_app(parse_team_role(team_role) or TeamRole.USER)
            if app.visibility >= ORG:
                scopes |= self._roles.app_read
        if scopes or endpoints:
            relation = Relation.MEMBER if role is not None else Relation.COLLABORATOR
            return relation, Grant(frozenset(scopes), endpoints, also_public=public)
        return (Relation.PUBLIC if public else Relation.NONE), None

    def evict_change(self, subject: str, subject_id: str) -> None:
        """A change to an app (`owner/app`) or an organization (credentials are the
        authenticator's)."""
        if subject == "app":
            owner, _, app_id = subject_id.partition("/")
            self.evict_app(owner, app_id)
        elif subject == "org":
            self.evict_owner(subject_id)

    def evict_app(self, owner_user_id: str, app_id: str) -> None:
        self._evict([k for k in self._cache if k[1] == owner_user_id and k[2] == app_id])

    def evict_owner(self, owner_user_id: str) -> None:
        """Membership, role or team changes: every cached relation to the organization."""
        self._evict([k for k in self._cache if k[1] == owner_user_id])

    def _evict(self, keys: list[tuple[str, str, str]]) -> None:
        for key in keys:
            del self._cache[key]
        # Nothing cached and nothing loading (a new app, most often): all else is current.
        if keys or self._loads.busy:
            self._loads_may_be_stale()

    def _loads_may_be_stale(self) -> None:
        self.generation += 1
        self._loads.forget()
