"""The authorization policy: a pure function of who calls what, on which target.

Order matters for what an outsider may learn: a caller who may not see the target gets the
same answer as for a target that does not exist, before any scope is looked at.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from scopegate.auth import scopes
from scopegate.auth.principal import AppRef, CredentialKind, Principal
from scopegate.contract.catalog import AuthType, MethodSpec
from scopegate.contract.status import KEY_INVALID_DESCRIPTION, ApiError, C, does_not_exist

ME = "me"


class Relation(enum.IntEnum):
    """How the principal's user stands to the target's owner."""

    NONE = 0
    OWNER = 1
    PUBLIC = 2  # the target app is PUBLIC and the caller is someone else
    COLLABORATOR = 3  # the caller was granted scopes on the target app
    MEMBER = 4  # the target is an organization the caller belongs to (roles, teams)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a collaborator grant, or organization roles and teams, allow on the target; the
    caller gets the intersection of this and its own credential."""

    scopes: frozenset[str]
    endpoints: frozenset[str]
    also_public: bool = False  # the app is PUBLIC too: public reads stay allowed


_WRITE_PREFIXES = ("Patch", "Delete", "Put")


def is_read_scope(name: str) -> bool:
    """A scope that only reads: what anyone may use on a PUBLIC app."""
    return name.endswith("_Get") or name in ("Search", "Predict")


@functools.cache  # per method: specs hash by identity, and the catalog is fixed
def is_public_read(spec: MethodSpec) -> bool:
    """May anyone's PAT call this on a PUBLIC app? Derived from the catalog: app-level
    (KeyAuth) methods whose required scopes are all reads (`*_Get`, `Search`, `Predict`),
    and which are not writes by name (a few Patch methods require only `*_Get`). Reading
    who collaborates, which keys exist or what happened administers the owner's account
    (`account_level`): never a public read."""
    return (
        spec.auth_type is AuthType.KEY_AUTH
        and not spec.account_level
        and bool(spec.scopes)
        and all(is_read_scope(s) for s in spec.scopes)
        and not spec.name.startswith(_WRITE_PREFIXES)
    )


@dataclass(frozen=True, slots=True)
class Target(AppRef):
    """The resource owner a request names, with `me` and empty ids already resolved: an app
    as an app-specific key names one (`AppRef`, compared field by field with it), its app_id
    empty when the request names an account."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    error: ApiError | None = None


ALLOW = Decision(True)


def resolve_target(principal: Principal | None, user_id: str, app_id: str) -> Target:
    """Fill what the caller left out: `me`/empty user means the caller, an API key its app."""
    if principal is None:
        return Target(user_id, app_id)
    if principal.app is not None:
        user_id = user_id or principal.app.user_id
        app_id = app_id or principal.app.app_id
    if not user_id or user_id == ME:
        user_id = principal.user_id
    return Target(user_id, app_id)


def _deny(code: int, description: str, details: str = "") -> Decision:
    return Decision(False, ApiError(code, description, details))


def _check_auth_type(principal: Principal, spec: MethodSpec) -> Decision:
    if spec.auth_type is AuthType.PAT_AUTH and principal.kind is CredentialKind.APP_KEY:
        return _deny(
            C.CONN_INSUFFICIENT_SCOPES,
            "Personal Access Token required",
            f"{spec.name} cannot be called with an app-specific API key; "
            "use a Personal Access Token.",
        )
    if (
        spec.auth_type is AuthType.SESSION_TOKEN_AUTH
        and principal.kind is not CredentialKind.SESSION
    ):
        return _deny(
            C.CONN_INSUFFICIENT_SCOPES,
            "Session token required",
            f"{spec.name} needs a logged-in session: send X-Clarifai-Session-Token.",
        )
    if spec.auth_type is AuthType.ADMIN_AUTH:
        return _deny(C.CONN_INSUFFICIENT_SCOPES, "Insufficient scopes", "Admin only.")
    return ALLOW


def authorize(
    principal: Principal,
    spec: MethodSpec,
    target: Target,
    relation: Relation,
    grant: Grant | None = None,
) -> Decision:
    """Allow, or the status to answer with. `principal` is authenticated already."""
    if spec.auth_type is AuthType.NO_AUTH:
        return ALLOW
    decision = _check_auth_type(principal, spec)
    if not decision.allowed:
        return decision

    if principal.app is not None:
        # An API key reaches its own app only; naming another app reveals nothing about it.
        if target.user_id != principal.app.user_id or (
            target.app_id and target.app_id != principal.app.app_id
        ):
            return Decision(
                False,
                ApiError(
                    C.CONN_KEY_INVALID,
                    KEY_INVALID_DESCRIPTION,
                    "This API key is scoped to one app; the request names another.",
                    http_status=401,
                ),
            )
    elif principal.resources is not None and not principal.resources.covers(
        target.user_id, "" if spec.account_level else target.app_id
    ):
        # Outside a fine-grained PAT's resources, as if it did not exist (a stranger's
        # answer). An account-level method is judged on the account, which only a named
        # organization opens: naming one of its own apps never lets such a token reach its
        # user's keys or apps as a set.
        return Decision(False, does_not_exist())
    elif relation is Relation.NONE:
        return Decision(False, does_not_exist())
    elif relation in _GRANTED and grant is None:
        return Decision(False, does_not_exist())  # a grant relation always carries its grant
    elif relation is Relation.PUBLIC and not is_public_read(spec):
        return _deny(
            C.CONN_INSUFFICIENT_SCOPES,
            "Insufficient scopes",
            f"{spec.name} is not allowed on another user's public app: it is read-only to you.",
        )

    # A session's principal holds `All`: a logged-in user is the user.
    lacking = _lacking(spec, principal.scopes, principal.endpoints)
    if relation in _GRANTED and grant is not None:
        if grant.also_public and is_public_read(spec) and not lacking:
            return ALLOW
        # Both the credential and the grant (collaborator, roles, teams) must permit the call.
        lacking = lacking | _lacking(spec, grant.scopes, grant.endpoints)
    if lacking:
        return _deny(
            C.CONN_INSUFFICIENT_SCOPES,
            "Insufficient scopes",
            f"{spec.name} requires scopes the credential lacks: {', '.join(sorted(lacking))}",
        )
    return ALLOW


_GRANTED = (Relation.COLLABORATOR, Relation.MEMBER)


def _lacking(spec: MethodSpec, held: frozenset[str], endpoints: frozenset[str]) -> frozenset[str]:
    """Scopes `spec` needs that `held` lacks; none if the endpoint itself is granted."""
    if spec.full_name in endpoints:
        return frozenset()
    return scopes.missing(spec.scopes, held)


def effective_scopes(
    held: frozenset[str], relation: Relation, grant: Grant | None, reads: frozenset[str]
) -> frozenset[str]:
    """What a caller holding `held` may do on a target it stands to as `relation`: its
    credential's scopes, cut down to the grant (collaborator, roles, teams) or, on someone
    else's PUBLIC app, to the read scopes `reads`. `All` stays `All` where nothing cuts it."""
    if grant is not None:
        return scopes.intersect(held, grant.scopes | reads if grant.also_public else grant.scopes)
    if relation is Relation.PUBLIC:
        return scopes.intersect(held, reads)
    return held


def standing_target(spec: MethodSpec, target: Target) -> Target:
    """What the caller's standing is looked up against: the app the request names, or for
    an account-level method the account alone, so that a collaborator grant or team role
    on one of its apps never opens the account (only an organization's roles do)."""
    if spec.account_level and target.app_id:
        return Target(target.user_id, "")
    return target


def needs_lookup(principal: Principal, target: Target) -> bool:
    """Whether the relation must be looked up (cached I/O): a user's credential naming
    someone else's resources. Owners and API keys are decided without I/O."""
    return principal.app is None and target.user_id != principal.user_id
