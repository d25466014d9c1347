"""Why a request was refused: the deciding layer and a one-line fix, worked out from what
the dispatcher knew when it refused (its stage, the status, the caller's credential) and
the method's required scopes. Pure; the refusal's own answer to the caller is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from scopegate.auth import scopes
from scopegate.auth.principal import Principal
from scopegate.contract.catalog import MethodSpec
from scopegate.contract.status import C

# The deciding layers, as records and answers name them.
AUTHENTICATION = "authentication"  # no, malformed, unknown or revoked credential
EXPIRY = "expiry"
CREDENTIAL_TYPE = "credential type"  # an API key where a PAT is required, ...
APP_BINDING = "app binding"  # an API key naming another app
RELATION = "relation"  # no standing toward the target (a stranger's answer)
FINE_GRAINED = "fine-grained limit"
SCOPES = "scopes"  # the credential lacks a required scope
GRANT = "grant"  # the credential holds them; the collaborator grant or role does not
ORGANIZATION_POLICY = "organization policy"
LIMITS = "rate or usage limit"
ADDRESS = "address"  # too many failures from the caller's address
NAMED_RESOURCE = "named resource"  # an app a request's body names

_FIXES = {
    AUTHENTICATION: "Send a valid secret as 'authorization: Key <secret>'; a deleted, rolled "
    "or leaked key no longer works: make a new one.",
    EXPIRY: "The key expired: make a new key, or patch this one's expiry.",
    CREDENTIAL_TYPE: "This method needs another kind of credential: use a Personal Access "
    "Token (or a logged-in session where a session is required).",
    APP_BINDING: "An API key reaches only its own app: use a key of the app named, or a PAT.",
    RELATION: "Check the user and app ids; to reach someone else's app, ask its owner to add "
    "you as a collaborator (or an organization's admin to give you a role or team).",
    FINE_GRAINED: "This fine-grained token does not name this app or organization: add it to "
    "the token's resources, or use another token.",
    SCOPES: "Add the missing scopes to this key (PatchKeys, `scopegate keys patch --scope`, "
    "or the portal).",
    GRANT: "Your credential holds the scopes but your standing there does not: ask the app's "
    "owner (or the organization's admin) to grant the missing scopes.",
    ORGANIZATION_POLICY: "The organization's token policy keeps this credential off its apps: "
    "do what the refusal's details say (an expiry, fine-grained limits, an admin's approval).",
    LIMITS: "The credential is over a rate or usage limit, or used from an address it does "
    "not allow: wait, or raise its limits.",
    ADDRESS: "Too many failed authentications came from this address: wait and retry with a "
    "valid secret.",
    NAMED_RESOURCE: "The request's body names an app you may not act on with this method.",
}


# What the policy's refusals say (auth/policy.py): lacking scopes, the wrong kind of credential.
_LACKS = "requires scopes the credential lacks: "
_TYPE_HINTS = ("cannot be called with", "needs a logged-in session", "Admin only")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the refusal rested on, as far as the credential goes."""

    layer: str
    required: tuple[str, ...]
    held: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal as the dispatcher saw it: the method, the stage that refused, the status,
    the caller (None before authentication) and the target the request named."""

    spec: MethodSpec
    stage: str
    code: int
    details: str
    principal: Principal | None
    target_user: str
    target_app: str


def explain(refused: Refused) -> Facts:
    spec, principal = refused.spec, refused.principal
    required = tuple(sorted(spec.scopes))
    held: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    if principal is not None:
        held = tuple(sorted(principal.scopes))
        if spec.full_name not in principal.endpoints:
            missing = tuple(sorted(scopes.missing(spec.scopes, principal.scopes)))
    layer = _layer(refused, missing)
    if layer == GRANT:
        # The credential lacks nothing: what the refusal names is what the grant lacks.
        missing = tuple(sorted(n for n in refused.details.partition(_LACKS)[2].split(", ") if n))
    return Facts(layer, required, held, missing)


def _layer(refused: Refused, missing: tuple[str, ...]) -> str:
    stage, code, details, principal = (
        refused.stage,
        refused.code,
        refused.details,
        refused.principal,
    )
    if stage == "limits":
        return LIMITS
    if stage == "policy":
        return ORGANIZATION_POLICY
    if code == C.CONN_THROTTLED:
        return ADDRESS
    if principal is None or stage == "authentication":
        return EXPIRY if "expired" in details else AUTHENTICATION
    if code == C.CONN_KEY_INVALID:
        return APP_BINDING if principal.app is not None else AUTHENTICATION
    if code == C.CONN_INSUFFICIENT_SCOPES:
        if any(hint in details for hint in _TYPE_HINTS):
            return CREDENTIAL_TYPE
        return SCOPES if missing else GRANT
    if code == C.CONN_DOES_NOT_EXIST:
        resources = principal.resources
        if resources is not None and not resources.covers(
            refused.target_user, "" if refused.spec.account_level else refused.target_app
        ):
            return FINE_GRAINED
        return NAMED_RESOURCE if stage == "handler" else RELATION
    return RELATION


def fix(layer: str, missing: tuple[str, ...] = ()) -> str:
    line = _FIXES.get(layer, "")
    if layer in (SCOPES, GRANT) and missing:
        line += f" Missing: {', '.join(missing)}."
    return line
