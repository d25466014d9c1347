"""Property-based tests of the scope algebra and the authorization policy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scopegate.auth.policy import Relation, Target, authorize, resolve_target
from scopegate.auth.principal import AppRef, CredentialKind, Principal
from scopegate.auth.scopes import ALL, intersect, missing
from scopegate.contract.catalog import load_catalog

CATALOG = load_catalog()
SPECS = sorted(CATALOG.methods.values(), key=lambda s: s.name)
SCOPE_NAMES = sorted(CATALOG.scopes)

specs = st.sampled_from(SPECS)
scope_sets = st.frozensets(st.sampled_from(SCOPE_NAMES), max_size=12)
ids = st.text(alphabet="abcdefgh0123456789", min_size=1, max_size=6)
relations = st.sampled_from(list(Relation))
kinds = st.sampled_from([CredentialKind.PAT, CredentialKind.APP_KEY, CredentialKind.SESSION])


def principal(kind, user_id, scopes, app_id="app") -> Principal:
    app = AppRef(user_id, app_id) if kind is CredentialKind.APP_KEY else None
    return Principal(user_id, kind, "pub", scopes, frozenset(), app)


@given(specs, kinds, ids, scope_sets, scope_sets, ids, ids, relations)
def test_adding_scopes_never_turns_allow_into_deny(spec, kind, user, held, extra, tu, ta, rel):
    target = Target(tu, ta)
    narrow = authorize(principal(kind, user, held), spec, target, rel)
    wide = authorize(principal(kind, user, held | extra), spec, target, rel)
    assert not narrow.allowed or wide.allowed


@given(specs, ids, scope_sets, ids, ids, relations)
def test_api_key_never_reaches_another_app(spec, user, held, other_user, other_app, rel):
    key = principal(CredentialKind.APP_KEY, user, held | {ALL}, app_id="home")
    target = resolve_target(key, other_user, other_app)
    decision = authorize(key, spec, target, rel)
    if (target.user_id, target.app_id) != (user, "home") and spec.auth_type.name != "NO_AUTH":
        assert not decision.allowed


@given(scope_sets, scope_sets, st.booleans(), st.booleans(), scope_sets)
def test_intersection_never_exceeds_either_side(a, b, a_all, b_all, required):
    a = a | {ALL} if a_all else a
    b = b | {ALL} if b_all else b
    both = intersect(a, b)
    # Whatever either side lacks, the intersection lacks too.
    assert missing(required, both) >= missing(required, a)
    assert missing(required, both) >= missing(required, b)


@given(kinds, ids, scope_sets, ids)
def test_me_always_means_the_caller(kind, user, held, app_id):
    caller = principal(kind, user, held)
    for named in ("me", ""):
        assert resolve_target(caller, named, app_id).user_id == user


@given(specs, ids, scope_sets, ids, ids)
def test_strangers_without_relation_learn_nothing(spec, user, held, owner, app_id):
    caller = principal(CredentialKind.PAT, user, held | {ALL})
    if owner == user or spec.auth_type.name == "NO_AUTH":
        return
    decision = authorize(caller, spec, Target(owner, app_id), Relation.NONE)
    if decision.error is not None and decision.error.code == 11101:
        return
    # Only auth-type refusals (which do not depend on the target) may come first.
    assert not decision.allowed and decision.error.code == 11007
    assert spec.auth_type.name in ("SESSION_TOKEN_AUTH", "ADMIN_AUTH")
