"""Organization token policies: whether a credential may reach an organization's apps.
Pure: the organization's rules come loaded (access/org_policies.py).

A non-compliant credential is blocked on the organization's apps only (never revoked; it
keeps working elsewhere), with details saying which policy and how to comply. Login
sessions are people at the portal, not tokens: exempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from scopegate.auth.principal import CredentialKind, Principal
from scopegate.contract.status import ApiError, C

BLOCKED = "Blocked by the organization's token policy"
PENDING, APPROVED, DENIED = "pending", "approved", "denied"


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    max_lifetime_days: int | None = None
    require_expiry: bool = False
    require_fine_grained: bool = False
    approval_required: bool = False

    @property
    def empty(self) -> bool:
        return self == TokenPolicy()


@dataclass(frozen=True, slots=True)
class OrgRules:
    """One organization's policy, its admins, and admins' decisions on members' tokens
    (by the token's public id: state and reason)."""

    policy: TokenPolicy
    admins: frozenset[str] = frozenset()
    decisions: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))


def names_org(principal: Principal, org_id: str) -> bool:
    """Whether a fine-grained PAT names the organization or one of its apps."""
    resources = principal.resources
    return resources is not None and (
        org_id in resources.orgs or any(owner == org_id for owner, _ in resources.apps)
    )


def violation(org_id: str, rules: OrgRules, principal: Principal) -> str | None:
    """What keeps `principal` off the organization's apps, as a person can act on it; None
    when it complies."""
    kind = principal.kind
    if kind is CredentialKind.SESSION:
        return None
    policy = rules.policy
    expires = principal.expires_at
    if policy.max_lifetime_days is not None:
        limit = policy.max_lifetime_days
        created = principal.created_at
        if expires is None or created is None or expires - created > timedelta(days=limit):
            return (
                f"Organization {org_id} allows credentials reaching its apps a lifetime of at "
                f"most {limit} days (max_lifetime_days); this one "
                + ("never expires" if expires is None else "lives longer")
                + f": use a key expiring within {limit} days of its creation."
            )
    if policy.require_expiry and expires is None:
        return (
            f"Organization {org_id} requires credentials reaching its apps to expire "
            "(require_expiry): set an expiry on this key, or use one that has one."
        )
    if kind is not CredentialKind.PAT:
        return None
    if policy.require_fine_grained and principal.resources is None:
        return (
            f"Organization {org_id} admits only fine-grained tokens (require_fine_grained): "
            "limit this token to the apps it needs (`scopegate keys patch --only-app`, "
            "PUT .../resources), or make one that is."
        )
    if (
        policy.approval_required
        and principal.user_id not in rules.admins
        and names_org(principal, org_id)
    ):
        state, reason = rules.decisions.get(principal.credential_id, (PENDING, ""))
        if state == PENDING:
            return (
                f"This token is pending approval by an admin of organization {org_id} "
                "(approval_required); it reaches the organization's apps once approved."
            )
        if state == DENIED:
            return f"An admin of organization {org_id} denied this token" + (
                f": {reason}" if reason else "."
            )
    return None


def blocked(details: str) -> ApiError:
    """CONN_KEY_INVALID (11008), as a key blocked there; HTTP 403: it is valid elsewhere."""
    return ApiError(C.CONN_KEY_INVALID, BLOCKED, details, http_status=403)
