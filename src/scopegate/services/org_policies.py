"""Organization token policies (README, "Organization policies"): set by the organization's
admins, and admins' decisions on members' fine-grained tokens naming the organization.
Each change is audited and logged (`org_policy`), so every process applies it within the
revocation bound (access/org_policies.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from sqlalchemy import Connection

from scopegate.auth.org_policy import APPROVED, DENIED, PENDING, TokenPolicy
from scopegate.auth.principal import CredentialKind
from scopegate.contract.status import does_not_exist, invalid_argument
from scopegate.services import change_log
from scopegate.services.audit import Actor
from scopegate.store import keys, org_policies, orgs
from scopegate.store.records import KeyRecord

MAX_LIFETIME_DAYS = 3650
SUBJECT = "org_policy"


def policy_of(conn: Connection, org_id: str) -> TokenPolicy:
    found = org_policies.get(conn, org_id)
    if found is None:
        return TokenPolicy()
    # The stored row holds the policy's fields under the same names.
    return TokenPolicy(**{f.name: getattr(found, f.name) for f in fields(TokenPolicy)})


def policy_json(policy: TokenPolicy) -> dict:
    return asdict(policy)


def set_policy(conn: Connection, org_id: str, policy: TokenPolicy, actor: Actor) -> TokenPolicy:
    days = policy.max_lifetime_days
    if days is not None and not 1 <= days <= MAX_LIFETIME_DAYS:
        raise invalid_argument(
            f"max_lifetime_days must be between 1 and {MAX_LIFETIME_DAYS}, or null for none."
        )
    org_policies.put(conn, org_id, **policy_json(policy))
    change_log.record(conn, SUBJECT, org_id)
    shown = ", ".join(f"{k}={v}" for k, v in policy_json(policy).items())
    actor.record(conn, "org.policy", f"org:{org_id}", shown)
    return policy


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A member's fine-grained PAT naming the organization, and the admins' decision."""

    key: KeyRecord
    state: str
    reason: str


def _names(record: KeyRecord, org_id: str) -> bool:
    found = record.resources
    return found is not None and (
        org_id in found.orgs or any(owner == org_id for owner, _ in found.apps)
    )


def token_requests(conn: Connection, org_id: str) -> list[TokenRequest]:
    """Members' fine-grained PATs naming the organization (admins' own are exempt)."""
    decided = {d.key_id: d for d in org_policies.decisions(conn, org_id)}
    found = []
    for member in orgs.members(conn, org_id):
        if member.role == "admin":
            continue
        for record in keys.list_for_user(
            conn, member.user_id, kind=CredentialKind.PAT.value, limit=10_000
        ):
            if _names(record, org_id):
                decision = decided.get(record.public_id)
                state, reason = (decision.state, decision.reason) if decision else (PENDING, "")
                found.append(TokenRequest(record, state, reason))
    return found


def decide(
    conn: Connection, org_id: str, key_id: str, approve: bool, reason: str, actor: Actor
) -> TokenRequest:
    """Approve or deny a member's token; anything else is not found alike."""
    wanted = next((t for t in token_requests(conn, org_id) if t.key.public_id == key_id), None)
    if wanted is None:
        raise does_not_exist(f"No member's token {key_id} names organization {org_id}.")
    state = APPROVED if approve else DENIED
    org_policies.decide(conn, org_id, key_id, state, reason[:1000], actor.user_id)
    change_log.record(conn, SUBJECT, org_id)
    actor.record(
        conn,
        f"org.token.{'approve' if approve else 'deny'}",
        f"org:{org_id}/key:{key_id}",
        f"member={wanted.key.user_id}" + (f" reason={reason}" if reason else ""),
    )
    return TokenRequest(wanted.key, state, reason)


def forget_decisions(conn: Connection, key_id: str) -> None:
    """A token's resources changed: it is asked for again wherever it was decided."""
    for org_id in org_policies.forget_key(conn, key_id):
        change_log.record(conn, SUBJECT, org_id)
