"""Organization and team roles, and the scopes each grants: a pure function of the scope
names in the catalog, so a scope added to the contract lands in the right role unaided.

Scopes fall in three families by resource: account administration (keys, collaborators,
audit logs, secrets, password policies, usage), infrastructure (compute clusters,
nodepools, deployments, runners, instance types) and app data (everything else: inputs,
concepts, models, workflows, annotations, datasets, ...).

Per role, on every app of the organization / on the organization itself (no app named):

- `admin`: All / All (the organization's app keys included; it has no PATs); manages
  members, teams and the organization;
- `org_contributor`: app data, read and write / the same, and creating apps;
- `org_user`: app data, read / listing apps;
- `team_contributor`: nothing beyond its teams' apps / listing apps;
- `financial_manager`: nothing beyond its teams' apps / usage and metrics, listing apps;
- `infrastructure_manager`: nothing beyond its teams' apps / infrastructure, read and
  write, listing apps.

A team's role on its apps is `contributor` (app data, read + write) or `user` (read).
Apps with ORG visibility (30) are readable (app data, read) by every member.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from functools import cache

from scopegate.contract.catalog import ACCOUNT_ADMINISTRATION

ALL = "All"

_ADMINISTRATION = ACCOUNT_ADMINISTRATION
_INFRASTRUCTURE = frozenset(
    {"ComputeClusters", "Nodepools", "Deployments", "Runners", "RunnerItems", "InstanceTypes"}
)
_BILLING = frozenset({"HistoricalUsage", "UserMetrics"})
_READ_ACTIONS = ("Get",)
_UNPREFIXED_READS = frozenset({"Search", "Predict"})


class OrgRole(enum.StrEnum):
    ADMIN = "admin"
    ORG_CONTRIBUTOR = "org_contributor"
    ORG_USER = "org_user"
    TEAM_CONTRIBUTOR = "team_contributor"
    FINANCIAL_MANAGER = "financial_manager"
    INFRASTRUCTURE_MANAGER = "infrastructure_manager"


class TeamRole(enum.StrEnum):
    CONTRIBUTOR = "contributor"
    USER = "user"


def parse_org_role(value: str) -> OrgRole | None:
    try:
        return OrgRole(value.strip().lower())
    except ValueError:
        return None


def parse_team_role(value: str) -> TeamRole | None:
    try:
        return TeamRole(value.strip().lower())
    except ValueError:
        return None


def _resource(scope: str) -> tuple[str, str]:
    resource, _, action = scope.rpartition("_")
    return resource, action


class RoleScopes:
    """Scope sets per role, computed once from the catalog's scope names."""

    def __init__(self, scope_names: Iterable[str], listing: Iterable[str] = ("Apps_Get",)) -> None:
        names = frozenset(scope_names) - {ALL}
        # What listing an organization's apps takes (ListApps' scopes): every member may.
        self.listing = frozenset(listing)
        data = {s for s in names if _resource(s)[0] not in _ADMINISTRATION | _INFRASTRUCTURE}
        self.app_read = frozenset(
            {s for s in data if _resource(s)[1] in _READ_ACTIONS or s in _UNPREFIXED_READS}
            | self.listing
        )
        self.app_write = frozenset(data | self.listing)
        self.infrastructure = frozenset(s for s in names if _resource(s)[0] in _INFRASTRUCTURE)
        self.billing = frozenset(s for s in names if _resource(s)[0] in _BILLING)

    def on_org_app(self, role: OrgRole) -> frozenset[str]:
        """What an organization role grants on every app of the organization."""
        if role is OrgRole.ADMIN:
            return frozenset({ALL})
        if role is OrgRole.ORG_CONTRIBUTOR:
            return self.app_write
        if role is OrgRole.ORG_USER:
            return self.app_read
        return frozenset()

    def on_team_app(self, role: TeamRole) -> frozenset[str]:
        return self.app_write if role is TeamRole.CONTRIBUTOR else self.app_read

    def on_org(self, role: OrgRole) -> frozenset[str]:
        """What a role grants on the organization itself (methods naming no app)."""
        listing = self.listing
        match role:
            case OrgRole.ADMIN:
                return frozenset({ALL})
            case OrgRole.ORG_CONTRIBUTOR:
                return self.app_write | {"Apps_Add"}
            case OrgRole.FINANCIAL_MANAGER:
                return listing | self.billing
            case OrgRole.INFRASTRUCTURE_MANAGER:
                return listing | self.infrastructure
            case _:
                return listing


@cache
def role_scopes() -> RoleScopes:
    from scopegate.contract.catalog import load_catalog

    catalog = load_catalog()
    return RoleScopes(catalog.scopes, listing=catalog.methods["ListApps"].scopes)
