"""Authentication: credentials on a request become a `Principal`.

The warm path is a dictionary lookup keyed by the secret's keyed hash: no I/O, no lock.
Misses load from the store in a worker thread. Entries are evicted by the credential
change log (see `invalidation.py`), so a revoked credential stops working at once on this
process and within the poll interval on every other one; a TTL bounds staleness anyway.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from hashlib import blake2b

from sqlalchemy import Engine

from scopegate.access.evictions import Evictions
from scopegate.access.limiter import CredentialLimits, credential_limits
from scopegate.access.single_flight import SingleFlight
from scopegate.auth import tokens
from scopegate.auth.limits import Rate, from_stored, parse_rates
from scopegate.auth.principal import AppRef, CredentialKind, Principal, ResourceLimits
from scopegate.auth.tokens import SecretHasher, SecretKind
from scopegate.contract.status import KEY_INVALID_DESCRIPTION, ApiError, C
from scopegate.store import keys, sessions
from scopegate.store import limits as stored_limits
from scopegate.store.records import KeyRecord, now

EXPECTED_FORM = "Send the header 'authorization: Key <secret>' with a PAT or an API key."


@dataclass(slots=True)
class CachedCredential:
    """A credential as the cache holds it: checked for expiry on every use."""

    principal: Principal
    expires_ts: float | None  # wall-clock expiry of the credential itself
    loaded_at: float  # monotonic
    # Worked out once: reading an enum member off its class costs ~10x a plain attribute.
    session: bool = False
    # Rates, quota, allowed addresses (access/limiter.py); None: none.
    limits: CredentialLimits | None = None


def _invalid_request(details: str) -> ApiError:
    return ApiError(C.CONN_INVALID_REQUEST, "Invalid request", details, http_status=401)


def key_invalid(details: str = "") -> ApiError:
    return ApiError(C.CONN_KEY_INVALID, KEY_INVALID_DESCRIPTION, details, http_status=401)


def secret_from_header(authorization: str | None) -> str:
    """The secret in `authorization: Key <secret>`, or the error for a malformed header."""
    stripped = authorization.strip() if authorization else ""
    if not stripped:
        return _raise(_invalid_request(f"Missing authorization header. {EXPECTED_FORM}"))
    scheme, _, secret = stripped.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "key" or not secret or " " in secret:
        return _raise(_invalid_request(f"Malformed authorization header. {EXPECTED_FORM}"))
    return secret


def _secret(authorization: str | None, session_token: str | None) -> tuple[str, bool]:
    """(secret, whether it came in the session-token header)."""
    if session_token and not authorization:
        return session_token.strip(), True
    return secret_from_header(authorization), False


@dataclass(slots=True)  # not frozen (a frozen one costs 3x to build), but never changed:
class Presented:  # the authenticator hands out one per known secret (`present`)
    """Credentials as read off a request, ready for `Authenticator.credential`:
    a transport that checks them early (the REST refusal gate) hands this on rather than
    having the header parsed and hashed a second time."""

    secret: str = field(repr=False)
    from_session_header: bool
    cache_key: bytes = field(repr=False)


def _raise(error: ApiError):
    raise error


def principal_from_key(record: KeyRecord) -> Principal:
    app = (
        AppRef(record.app_user_id, record.app_id) if record.app_user_id and record.app_id else None
    )
    return Principal(
        user_id=record.user_id,
        kind=CredentialKind(record.kind),
        credential_id=record.public_id,
        scopes=frozenset(record.scopes),
        endpoints=frozenset(record.endpoints),
        app=app,
        expires_at=record.expires_at,
        resources=resources_of(record),
        created_at=record.created_at,
    )


def resources_of(record: KeyRecord) -> ResourceLimits | None:
    """A fine-grained PAT's limits, built once per load: the policy reads them per request."""
    found = record.resources
    if found is None:
        return None
    return ResourceLimits(frozenset(found.apps), frozenset(found.orgs))


# A cached credential is reloaded after this long even if no change evicted it, and an
# unknown secret is answered from memory this long (server settings can change both).
CACHE_SECONDS = 300.0
UNKNOWN_CACHE_SECONDS = 5.0
# Header values of loaded credentials remembered with their keyed hash (`present`).
PRESENTED_CAPACITY = 10_000


class Authenticator:
    def __init__(
        self,
        engine: Engine,
        hasher: SecretHasher,
        *,
        ttl_seconds: float = CACHE_SECONDS,
        negative_ttl_seconds: float = UNKNOWN_CACHE_SECONDS,
        negative_capacity: int = 100_000,
        evictions: Evictions | None = None,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self.ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._negative_capacity = negative_capacity
        # Keyed by a per-process BLAKE2b of the secret: fast, and no secret kept in memory.
        self._cache_hash = blake2b(key=os.urandom(32), digest_size=16)
        self._cache: dict[bytes, CachedCredential] = {}
        self._by_subject: dict[str, set[bytes]] = {}
        self._unknown: OrderedDict[bytes, float] = OrderedDict()
        # public id -> wall-clock time of last use, written to the database in batches.
        self.last_used: dict[str, float] = {}
        self.store_lookups = 0  # how many requests reached the database (the cache's misses)
        self.hits = 0  # answered from the cache; both plain counts, read by the metrics
        # Concurrent misses on one secret share one query; an eviction bumps the generation
        # so that a load that was in flight when it ran is not cached.
        self._loads: SingleFlight[CachedCredential] = SingleFlight()
        # SCOPEGATE_DEFAULT_RATE_LIMIT: the rates of keys without their own.
        self.default_rates: tuple[Rate, ...] = ()
        # Moves on every eviction: what was derived from this cache before is stale. Read
        # by the decision cache; only this class moves it.
        self.generation = 0
        # Whether secrets in the legacy format (32 hex, no checksum) may match a stored key.
        # The change watcher turns it off when none were ever imported, so floods of random
        # hex cost no query there, and back on when an import shows up in the change log.
        self.accept_legacy = True
        # The warm path's shortcut: the exact value of an `authorization` (or session-token)
        # header whose credential is loaded -> its Presented, so a repeat skips parsing the
        # header and hashing the secret (~2-3 us). Only loaded credentials' values get in
        # (garbage and unknown secrets never do), at most PRESENTED_CAPACITY (oldest out
        # first), all of them out on any eviction that drops a credential, so a revoked
        # secret does not stay in memory; never logged. The dict compares a value only
        # after a per-process keyed hash (SipHash) matched, so its timing tells an outsider
        # nothing about a stored secret.
        self._known_headers: dict[str, Presented] = {}
        self._known_session_headers: dict[str, Presented] = {}
        if evictions is not None:
            evictions.register(self)

    def _parse(self, secret: str) -> SecretKind:
        kind = tokens.parse(secret)
        if kind is None or (kind is SecretKind.LEGACY and not self.accept_legacy):
            raise key_invalid()
        return kind

    def present(self, authorization: str | None, session_token: str | None = None) -> Presented:
        """The credentials on a request, or the error `authenticate` would raise for them
        without I/O (missing or malformed header, checksum-invalid secret). Lets a transport
        refuse garbage before it decodes the request."""
        # The header `_secret` reads the secret from, and where it is remembered.
        if authorization:
            header, known = authorization, self._known_headers
        elif session_token:
            header, known = session_token, self._known_session_headers
        else:
            header, known = "", None
        if known is not None:
            presented = known.get(header)
            if presented is not None:
                return presented
        secret, from_session_header = _secret(authorization, session_token)
        keyed = self._cache_hash.copy()  # half the cost of keying a new hash each time
        keyed.update(secret.encode())
        cache_key = keyed.digest()
        presented = Presented(secret, from_session_header, cache_key)
        if cache_key not in self._cache:
            self._parse(secret)
        elif known is not None:
            if len(known) >= PRESENTED_CAPACITY:
                del known[next(iter(known))]
            known[header] = presented
        return presented

    async def authenticate(
        self, authorization: str | None, session_token: str | None = None
    ) -> Principal:
        presented = self.present(authorization, session_token)
        return self.admit(await self.credential(presented), presented.from_session_header)

    async def credential(self, presented: Presented) -> CachedCredential:
        """The cached credential the secret stands for, loaded on a miss; not yet checked
        for this use (see `admit`)."""
        # The warm path: one fast keyed hash (already in `presented`) and a dict lookup.
        # Parsing the checksum and the HMAC that the database is keyed by are only needed
        # on a miss.
        cache_key, secret = presented.cache_key, presented.secret
        entry = self._cache.get(cache_key)
        mono = time.monotonic()
        if entry is None or mono - entry.loaded_at > self.ttl:
            return await self._load(cache_key, secret, self._parse(secret), mono)
        self.hits += 1
        return entry

    def admit(self, entry: CachedCredential, from_session_header: bool) -> Principal:
        """The checks each use of a credential gets, however it was found: sent in the
        right header, not expired. Records the use."""
        principal = entry.principal
        if from_session_header and not entry.session:
            raise key_invalid()
        wall = time.time()
        if entry.expires_ts is not None and wall >= entry.expires_ts:
            assert principal.expires_at is not None  # expires_ts is derived from it
            raise key_invalid(f"This key expired at {principal.expires_at.isoformat()}.")
        if not entry.session:
            self.last_used[principal.credential_id] = wall
        return principal

    async def _load(
        self, cache_key: bytes, secret: str, kind: SecretKind, mono: float
    ) -> CachedCredential:
        seen = self._unknown.get(cache_key)
        if seen is not None and mono - seen < self._negative_ttl:
            raise key_invalid()
        return await self._loads.run(cache_key, partial(self._fetch, cache_key, secret, kind, mono))

    async def _fetch(
        self, cache_key: bytes, secret: str, kind: SecretKind, mono: float
    ) -> CachedCredential:
        generation = self.generation
        self.store_lookups += 1
        digest = self._hasher.digest(secret)
        entry = await asyncio.to_thread(self._load_sync, digest, kind, mono)
        if entry is None:
            self._remember_unknown(cache_key, mono)
            raise key_invalid()
        if generation == self.generation:
            # Not kept if an eviction ran meanwhile: the query may have read what it revoked.
            self._cache[cache_key] = entry
            subject = entry.principal.credential_id
            self._by_subject.setdefault(subject, set()).add(cache_key)
            self._by_subject.setdefault(f"user:{entry.principal.user_id}", set()).add(cache_key)
        return entry

    def _load_sync(self, digest: bytes, kind: SecretKind, mono: float) -> CachedCredential | None:
        session_kind = kind is SecretKind.SESSION
        record: KeyRecord | None = None
        with self._engine.connect() as conn:
            if session_kind:
                session = sessions.find_by_digest(conn, digest, now())
                if session is None:
                    return None
                principal = Principal(
                    user_id=session.user_id,
                    kind=CredentialKind.SESSION,
                    credential_id=session.public_id,
                    scopes=frozenset({"All"}),
                    endpoints=frozenset(),
                    expires_at=session.expires_at,
                )
            else:
                record = keys.find_by_digest(conn, digest, now())
                if record is None:
                    return None
                principal = principal_from_key(record)
            limits = self._limits_sync(conn, principal, record if not session_kind else None)
        expires_ts = principal.expires_at.timestamp() if principal.expires_at else None
        return CachedCredential(
            principal,
            expires_ts,
            mono,
            session=principal.kind is CredentialKind.SESSION,
            limits=limits,
        )

    def _limits_sync(
        self, conn, principal: Principal, record: KeyRecord | None
    ) -> CredentialLimits | None:
        """The credential's limits: a key's own (or the default rates), its user's rates."""
        own = stored_limits.for_key(conn, record.pk) if record is not None else None
        return credential_limits(
            credential_id=principal.credential_id,
            user_id=principal.user_id,
            key_pk=record.pk if record is not None else None,
            own=from_stored(
                own.rates,
                own.allow,
                own.methods,
                own.remaining,
                own.refill_period,
                own.refill_amount,
            )
            if own is not None
            else None,
            revision=own.revision if own is not None else 0,
            user_rates=parse_rates(stored_limits.user_rates(conn, principal.user_id)),
            default_rates=self.default_rates,
        )

    def _remember_unknown(self, digest: bytes, mono: float) -> None:
        self._unknown[digest] = mono
        self._unknown.move_to_end(digest)
        while len(self._unknown) > self._negative_capacity:
            self._unknown.popitem(last=False)

    def evict_change(self, subject: str, subject_id: str) -> None:
        """A change to a key, a session or a user (apps and organizations are the
        relation cache's)."""
        if subject in ("key", "session"):
            self.evict(subject_id)
        elif subject not in ("app", "org"):
            self.evict(f"user:{subject_id}")

    def evict(self, subject: str) -> None:
        """Drop cached credentials of a key or session public id, or of `user:<id>`."""
        dropped = self._by_subject.pop(subject, ())
        for digest in dropped:
            self._cache.pop(digest, None)
        # A change to something never loaded (a new key, most often) leaves all else
        # current: only a drop, or a load that may have read the old state, moves it on.
        if dropped or self._loads.busy:
            self._loads_may_be_stale()

    def evict_all(self) -> None:
        self._loads_may_be_stale()
        self._cache.clear()
        self._by_subject.clear()

    def _loads_may_be_stale(self) -> None:
        self.generation += 1
        self._loads.forget()
        self._known_headers.clear()
        self._known_session_headers.clear()

    def take_last_used(self) -> dict[str, datetime]:
        used, self.last_used = self.last_used, {}
        return {key: datetime.fromtimestamp(ts, UTC) for key, ts in used.items()}
