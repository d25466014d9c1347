"""Allowed requests, remembered: a repeat skips the relation lookup and the policy.

Whether a credential may call a method on the ids a request names is a pure function of
what the credential cache and the relation cache hold (see `auth.policy.authorize`), so
its answer is kept exactly as long as those inputs are: until either cache evicts anything
(its generation moves: the whole cache is stale, and emptied) or the older input reaches
its TTL. A change of a credential, grant, membership or visibility therefore takes effect
with the same bound as before. Only allows are kept: a refusal is worked out in full each
time, throttle included. The checks each use of a credential gets (expiry, the header it
came in, last use) still run per request, in `Authenticator.admit`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from scopegate.access.authentication import CachedCredential
from scopegate.auth.policy import Relation, Target
from scopegate.store.schema import ID_LENGTH


@dataclass(slots=True)
class Allowed:
    credential: CachedCredential
    target: Target
    fresh_until: float  # monotonic: when the older of its inputs expires
    # How the caller stands to the target and what it may do there (its credential's scopes
    # after the collaborator/role grant): kept with the allow so that what runs after
    # authorization (a forwarded call's identity) costs nothing more on a repeat.
    relation: Relation = Relation.OWNER
    scopes: frozenset[str] = frozenset()


class Versioned(Protocol):
    generation: int  # moves whenever the cache evicts anything


class DecisionCache:
    def __init__(
        self, credentials: Versioned, relations: Versioned, capacity: int = 65_536
    ) -> None:
        # The caches the decisions rest on; read on every request, so plain attributes.
        self._credentials = credentials
        self._relations = relations
        # Any caller may name any ids, so the cache is bounded: emptied when full.
        self._capacity = capacity
        self._allowed: dict[Hashable, Allowed] = {}
        self._generation = 0
        # Plain counts, read by the metrics: a lookup answered, or not.
        self.hits = 0
        self.misses = 0

    def generation(self) -> int:
        """Both caches' generations only grow, so their sum is unchanged exactly when
        neither moved."""
        return self._credentials.generation + self._relations.generation

    def get(self, key: Hashable, mono: float) -> Allowed | None:
        """The decision kept for `key`, if it is still current."""
        # `generation()`, inlined: this runs on every authenticated request.
        generation = self._credentials.generation + self._relations.generation
        if generation != self._generation:
            self._allowed.clear()
            self._generation = generation
            self.misses += 1
            return None
        allowed = self._allowed.get(key)
        if allowed is None or mono >= allowed.fresh_until:
            self.misses += 1
            return None
        self.hits += 1
        return allowed

    def put(self, key: Hashable, allowed: Allowed, since: int) -> None:
        """Keep `allowed`, worked out from the caches as they were at generation `since`."""
        generation = self.generation()
        if generation != since:
            return  # an eviction ran while it was worked out: it may rest on what changed
        if generation != self._generation or len(self._allowed) >= self._capacity:
            self._allowed.clear()
            self._generation = generation
        self._allowed[key] = allowed


def cacheable(user_id: str, app_id: str) -> bool:
    """Ids no row can hold name nothing worth remembering (and would let a caller fill
    memory with long keys)."""
    return len(user_id) <= ID_LENGTH and len(app_id) <= ID_LENGTH
