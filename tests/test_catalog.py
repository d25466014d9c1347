"""The catalog and the pure auth pieces, without a server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scopegate.auth import tokens
from scopegate.auth.scopes import ALL, ScopeAlgebra, UnknownScopeError, missing
from scopegate.contract.catalog import AuthType, load_catalog
from scopegate.transports.rest.router import MethodNotAllowedError, Router

CATALOG = load_catalog()


def test_catalog_reads_every_method_with_its_annotations():
    assert len(CATALOG.methods) == 273
    post_keys = CATALOG.methods["PostKeys"]
    assert post_keys.auth_type is AuthType.PAT_AUTH
    assert post_keys.full_name == "/clarifai.api.V2/PostKeys"
    assert {"Keys_Add", "Keys_Get", "Apps_Get"} <= post_keys.scopes
    assert CATALOG.methods["ListStatusCodes"].auth_type is AuthType.NO_AUTH
    assert CATALOG.methods["ListScopes"].auth_type is AuthType.SESSION_TOKEN_AUTH
    outputs = CATALOG.methods["PostModelOutputs"]
    templates = {b.template for b in outputs.bindings}
    assert "/v2/models/{model_id}/outputs" in templates  # an additional binding
    assert len(outputs.bindings) == 5
    assert sum(len(m.bindings) for m in CATALOG.methods.values()) == 467
    assert CATALOG.scopes["Inputs_Add"].depends_on == ("Inputs_Get",)


def test_router_prefers_literal_segments():
    router = Router(CATALOG)
    assert router.match("GET", "/v2/users/me/apps/a/inputs/status").spec.name == "GetInputCount"
    assert router.match("GET", "/v2/users/me/apps/a/inputs/abc").spec.name == "GetInput"
    match = router.match("GET", "/v2/users/u1/apps/a1")
    assert match.spec.name == "GetApp"
    assert match.path_values == {"user_app_id.user_id": "u1", "user_app_id.app_id": "a1"}
    assert router.match("GET", "/v2/nothing/here") is None
    with pytest.raises(MethodNotAllowedError):
        router.match("PUT", "/v2/status_codes")


def test_router_answers_a_repeated_path_alike_and_its_values_cannot_be_changed():
    router = Router(CATALOG)
    long_id = "i" * 600  # past the length of paths whose matches are remembered
    for path, name in (
        ("/v2/users/u1/apps/a1/inputs/in1", "GetInput"),
        (f"/v2/users/u1/apps/a1/inputs/{long_id}", "GetInput"),
        ("/v2/users/u1/apps/a%2F1", "GetApp"),
    ):
        first, again = router.match("GET", path), router.match("GET", path)
        assert first.spec.name == again.spec.name == name
        assert first.path_values == again.path_values
    assert router.match("GET", "/v2/users/u1/apps/a%2F1").path_values["user_app_id.app_id"] == (
        "a/1"
    )
    assert (
        router.match("GET", f"/v2/users/u1/apps/a1/inputs/{long_id}").path_values["input_id"]
        == long_id
    )
    with pytest.raises(TypeError):
        router.match("GET", "/v2/users/u1/apps/a1").path_values["user_app_id.app_id"] = "a2"
    for _ in range(2):  # a refused verb is refused every time, not remembered as a match
        with pytest.raises(MethodNotAllowedError):
            router.match("PUT", "/v2/status_codes")


@pytest.mark.parametrize(
    "kind", [tokens.SecretKind.PAT, tokens.SecretKind.APP_KEY, tokens.SecretKind.SESSION]
)
def test_secret_format_round_trip(kind):
    secret = tokens.generate(kind)
    assert len(secret) == tokens.SECRET_LENGTH
    assert tokens.parse(secret) is kind
    # Any single-character change breaks the checksum (or the prefix).
    for i in range(len(secret)):
        changed = secret[:i] + ("A" if secret[i] != "A" else "B") + secret[i + 1 :]
        assert tokens.parse(changed) is None, i
    assert tokens.mask(secret).endswith(secret[-4:])
    assert secret[8:-4] not in tokens.mask(secret)


def test_secret_parse_rejects_garbage_and_knows_legacy():
    assert tokens.parse("") is None
    assert tokens.parse("sgp_short") is None
    assert tokens.parse("x" * 40) is None
    assert tokens.parse("0123456789abcdef0123456789abcdef") is tokens.SecretKind.LEGACY
    assert tokens.parse("0123456789ABCDEF0123456789ABCDEF") is None


def test_secret_hasher_is_keyed():
    a, b = tokens.SecretHasher(b"a" * 32), tokens.SecretHasher(b"b" * 32)
    assert a.digest("sgp_x") != b.digest("sgp_x")
    assert a.digest("sgp_x") == a.digest("sgp_x")
    with pytest.raises(ValueError):
        tokens.SecretHasher(b"short")


def test_scope_algebra():
    algebra = ScopeAlgebra({n: s.depends_on for n, s in CATALOG.scopes.items()})
    assert algebra.normalize(["Inputs:Add"]) == {"Inputs_Add"}
    assert algebra.close({"Inputs_Add"}) >= {"Inputs_Add", "Inputs_Get"}
    with pytest.raises(UnknownScopeError) as error:
        algebra.normalize(["Inputs_Get", "Nope", "Also:Nope"])
    assert error.value.names == ["Also_Nope", "Nope"]
    assert missing(frozenset({"A", "B"}), frozenset({ALL})) == frozenset()
    assert missing(frozenset({"A", "B"}), frozenset({"A"})) == {"B"}


def test_readme_lists_the_app_level_pat_methods():
    """README, "Who may reach what", names every PATAuth method that stays app-level; the
    catalog's account-level rule must agree with it (and with the methods it names)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("The `PATAuth` methods that stay app-level", 1)[1].split("(`tests/", 1)[
        0
    ]
    listed = set(re.findall(r"`(\w+)`", section))
    derived = {
        spec.name
        for spec in CATALOG.methods.values()
        if spec.auth_type is AuthType.PAT_AUTH and spec.has_user_app_id and not spec.account_level
    }
    assert listed == derived
    for name in ("PostKeys", "ListKeys", "GetKey", "DeleteKey", "PostApps", "PatchApps"):
        assert CATALOG.methods[name].account_level, name
    for name in ("DeleteApp", "GetUser", "PostAuditLogSearches", "ListCollaborations"):
        assert CATALOG.methods[name].account_level, name
    for name in ("ListAppKeys", "ListCollaborators", "PostCollaborators", "ProcessRunnerItems"):
        assert CATALOG.methods[name].account_level, name
    for name in ("GetApp", "ListModels", "PostModelOutputs", "StreamModelOutputs", "MyScopes"):
        assert not CATALOG.methods[name].account_level, name
