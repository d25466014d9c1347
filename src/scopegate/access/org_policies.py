"""Organization token policies in memory: every organization that has one, with its admins
and admins' decisions on members' tokens, so that checking a request is one dictionary
lookup (none for an organization without a policy, and none for a user's own apps).

Loaded at start; an organization's entry is read again when a change to its policy,
decisions (`org_policy`) or members (`org`) is committed here or read from the change log,
so a change reaches every process within the revocation bound. The check runs on every
request, remembered decisions included (dispatch.py): it is not cached with them.
"""

from __future__ import annotations

from types import MappingProxyType

from sqlalchemy import Connection, Engine

from scopegate.access.evictions import Evictions
from scopegate.auth.org_policy import OrgRules, TokenPolicy, blocked, violation
from scopegate.auth.policy import Target
from scopegate.auth.principal import Principal
from scopegate.store import org_policies, orgs


class OrgPolicies:
    def __init__(self, engine: Engine, evictions: Evictions | None = None) -> None:
        self._engine = engine
        self._rules: dict[str, OrgRules] = {}
        # Organizations with a policy: the dispatcher's test, read on every request.
        self.governed = self._rules
        if evictions is not None:
            evictions.register(self)

    def load_all(self) -> None:
        with self._engine.connect() as conn:
            for org_id in org_policies.all_org_ids(conn):
                self._reload(conn, org_id)

    def _reload(self, conn: Connection, org_id: str) -> None:
        found = org_policies.get(conn, org_id)
        policy = (
            TokenPolicy(
                found.max_lifetime_days,
                found.require_expiry,
                found.require_fine_grained,
                found.approval_required,
            )
            if found is not None
            else TokenPolicy()
        )
        if policy.empty:
            self._rules.pop(org_id, None)
            return
        admins = frozenset(m.user_id for m in orgs.members(conn, org_id) if m.role == "admin")
        decisions = {d.key_id: (d.state, d.reason) for d in org_policies.decisions(conn, org_id)}
        self._rules[org_id] = OrgRules(policy, admins, MappingProxyType(decisions))

    def evict_change(self, subject: str, subject_id: str) -> None:
        if subject == "org_policy" or (subject == "org" and subject_id in self._rules):
            with self._engine.connect() as conn:
                self._reload(conn, subject_id)

    def check(self, principal: Principal, target: Target) -> None:
        """Raise the refusal when the target's organization's policy keeps `principal` off."""
        rules = self._rules.get(target.user_id)
        if rules is None:
            return
        details = violation(target.user_id, rules, principal)
        if details is not None:
            raise blocked(details)
