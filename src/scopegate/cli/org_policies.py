"""`scopegate orgs policy|token-requests|approve|deny`: organizations' token policies and
admins' decisions on members' fine-grained tokens, for the operator (each change audited and
logged: running servers apply it within the revocation bound)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from scopegate.cli.common import Database, option, usage, with_database
from scopegate.services import org_policies, organizations
from scopegate.services.audit import cli_actor
from scopegate.services.org_policies import policy_json

OrgArgument = Annotated[str, typer.Argument(help="The organization's id.", show_default=False)]
KeyArgument = Annotated[str, typer.Argument(help="The token's public id.", show_default=False)]


def _switch(flag: str, text: str):
    return Annotated[bool | None, typer.Option(f"--{flag}/--no-{flag}", help=text)]


@with_database
def org_policy(
    org_id: OrgArgument,
    max_lifetime_days: Annotated[
        int | None,
        option("--max-lifetime-days", "Credentials reaching its apps live at most N days.", min=1),
    ] = None,
    no_max_lifetime: Annotated[
        bool, typer.Option("--no-max-lifetime", help="No longest lifetime.")
    ] = False,
    require_expiry: _switch("require-expiry", "Credentials reaching its apps must expire.") = None,
    require_fine_grained: _switch(
        "require-fine-grained", "Only PATs limited to named resources reach its apps."
    ) = None,
    approval_required: _switch(
        "approval-required", "Members' fine-grained PATs naming it wait for an admin's approval."
    ) = None,
    *,
    db: Database,
) -> None:
    """Show an organization's token policy, or change the parts given."""
    if max_lifetime_days is not None and no_max_lifetime:
        usage("Give --max-lifetime-days or --no-max-lifetime, not both.")
    changes: dict = {
        name: value
        for name, value in (
            ("require_expiry", require_expiry),
            ("require_fine_grained", require_fine_grained),
            ("approval_required", approval_required),
        )
        if value is not None
    }
    if max_lifetime_days is not None or no_max_lifetime:
        changes["max_lifetime_days"] = max_lifetime_days
    with db.begin() as (_, conn):
        organizations.get_org(conn, org_id)
        policy = org_policies.policy_of(conn, org_id)
        if changes:
            policy = org_policies.set_policy(
                conn, org_id, replace(policy, **changes), cli_actor(org_id)
            )
    shown = policy_json(policy)
    db.show(
        {"organization_id": org_id, "policy": shown},
        f"Token policy of {org_id}" + (" (changed)" if changes else "") + ":",
        *(f"  {name}: {value}" for name, value in shown.items()),
    )


@with_database
def org_token_requests(org_id: OrgArgument, *, db: Database) -> None:
    """Members' fine-grained tokens naming the organization, with the admins' decisions."""
    with db.connect() as (_, conn):
        organizations.get_org(conn, org_id)
        found = org_policies.token_requests(conn, org_id)
    db.show(
        {
            "organization_id": org_id,
            "token_requests": [
                {
                    "key_id": r.key.public_id,
                    "user_id": r.key.user_id,
                    "description": r.key.description,
                    "state": r.state,
                    "reason": r.reason,
                }
                for r in found
            ],
        },
        *(
            f"{r.key.public_id} of {r.key.user_id} ({r.key.description or '-'}): {r.state}"
            + (f", {r.reason}" if r.reason else "")
            for r in found
        ),
        *([] if found else [f"No member's token names {org_id}."]),
    )


def _decide(db: Database, org_id: str, key_id: str, approve: bool, reason: str) -> None:
    with db.begin() as (_, conn):
        organizations.get_org(conn, org_id)
        decided = org_policies.decide(conn, org_id, key_id, approve, reason, cli_actor(org_id))
    db.show(
        {"key_id": key_id, "state": decided.state, "reason": decided.reason},
        f"Token {key_id} of {decided.key.user_id}: {decided.state}.",
    )


@with_database
def org_approve(org_id: OrgArgument, key_id: KeyArgument, *, db: Database) -> None:
    """Approve a member's token: it reaches the organization's apps."""
    _decide(db, org_id, key_id, True, "")


@with_database
def org_deny(
    org_id: OrgArgument,
    key_id: KeyArgument,
    reason: Annotated[
        str, option("--reason", "Shown to the member when the token is refused.")
    ] = "",
    *,
    db: Database,
) -> None:
    """Deny a member's token, with a reason the member sees."""
    _decide(db, org_id, key_id, False, reason)
