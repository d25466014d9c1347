"""The signed identity of forwarded calls (gateway/assertion.py), checked with PyJWT as an
upstream would check it."""

from __future__ import annotations

import json
import stat
import time

import jwt
import pytest

from scopegate.auth.policy import Relation, Target
from scopegate.auth.principal import CredentialKind, Principal
from scopegate.gateway.assertion import AssertionSigner, load_or_create_key

ALICE = Principal(
    user_id="alice",
    kind=CredentialKind.APP_KEY,
    credential_id="key-1",
    scopes=frozenset({"All"}),
    endpoints=frozenset(),
)


def test_the_key_is_made_once_private_and_reused(tmp_path):
    path = tmp_path / "upstream-assertion.pem"
    first = AssertionSigner(load_or_create_key(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = AssertionSigner(load_or_create_key(path))
    assert again.kid == first.kid
    assert list(tmp_path.iterdir()) == [path]  # no staging file left behind


def test_a_token_verifies_with_the_key_set_and_only_within_its_minute(tmp_path):
    signer = AssertionSigner(load_or_create_key(tmp_path / "k.pem"))
    token = signer.sign(
        ALICE,
        Relation.OWNER,
        frozenset({"Inputs_Get", "Apps_Get"}),
        "sg-1",
        "/m",
        Target("alice", "a"),
    )
    (jwk,) = json.loads(signer.jwks())["keys"]
    key = jwt.PyJWK(jwk)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": signer.kid, "typ": "JWT"}
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"])
    assert claims["credential_type"] == "app_specific_key"
    assert claims["scopes"] == ["Apps_Get", "Inputs_Get"]
    assert claims["user_app_id"] == {"user_id": "alice", "app_id": "a"}
    # A minute and a second later (as seen through a negative leeway): expired.
    late = {"verify_iat": False, "verify_nbf": False}
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, key.key, algorithms=["EdDSA"], options=late, leeway=-61)
    other = AssertionSigner(load_or_create_key(tmp_path / "other.pem"))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, jwt.PyJWK(json.loads(other.jwks())["keys"][0]).key, algorithms=["EdDSA"])
    assert claims["exp"] - claims["iat"] == 60 and abs(claims["iat"] - time.time()) < 5
