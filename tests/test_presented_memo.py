"""The authenticator's memo of presented headers: a repeat of a loaded credential's header
skips parsing and hashing, and nothing else is remembered, for long or at all."""

from __future__ import annotations

import asyncio

import pytest

from scopegate.access import authentication
from scopegate.access.authentication import Authenticator
from scopegate.auth.tokens import _checksum
from scopegate.contract.status import ApiError, C
from tests.support.in_process import sign_up


def _loaded(services, *user_ids: str) -> tuple[Authenticator, list[str]]:
    authenticator = Authenticator(services.engine, services.hasher)
    pats = [sign_up(services, user_id) for user_id in user_ids]
    for pat in pats:
        asyncio.run(authenticator.authenticate("Key " + pat))
    return authenticator, pats


def test_a_loaded_credentials_header_is_remembered_by_its_value(services):
    authenticator, (pat,) = _loaded(services, "u1")
    remembered = authenticator.present("Key " + pat)
    assert remembered.secret == pat and remembered.from_session_header is False
    # Another string with the same value (each request decodes its own): the same answer.
    assert authenticator.present("".join(["Key ", pat])) is remembered
    assert asyncio.run(authenticator.authenticate("Key " + pat)).user_id == "u1"
    # Sent in the session-token header, the same secret is not the remembered answer: it
    # must still be refused as a session token.
    as_session = authenticator.present(None, pat)
    assert as_session.from_session_header is True
    with pytest.raises(ApiError) as refused:
        asyncio.run(authenticator.authenticate(None, pat))
    assert refused.value.code == C.CONN_KEY_INVALID


@pytest.mark.parametrize(
    "header",
    [
        "Key sgp_" + "A" * 30 + _checksum("sgp_" + "A" * 30),  # forged: valid checksum, unknown
        "Key sgp_" + "A" * 36,  # checksum-invalid
    ],
)
def test_unknown_and_garbage_secrets_are_never_remembered(services, header):
    authenticator, _ = _loaded(services, "u1")
    for _ in range(3):
        try:
            first = authenticator.present(header)
        except ApiError as error:  # garbage: refused without a lookup, every time
            assert error.code == C.CONN_KEY_INVALID
            continue
        with pytest.raises(ApiError):
            asyncio.run(authenticator.authenticate(header))
        assert authenticator.present(header) is not first


def test_an_eviction_forgets_every_remembered_header(services):
    authenticator, (pat, other) = _loaded(services, "u1", "u2")
    remembered = authenticator.present("Key " + pat)
    kept = authenticator.present("Key " + other)
    assert authenticator.present("Key " + pat) is remembered
    principal = asyncio.run(authenticator.authenticate("Key " + pat))
    authenticator.evict(principal.credential_id)  # what the change log does on a revocation
    assert authenticator.present("Key " + pat) is not remembered
    assert authenticator.present("Key " + other) is not kept  # all of them: simple and rare
    authenticator.evict("no-such-key")  # dropping nothing forgets nothing
    again = authenticator.present("Key " + other)
    asyncio.run(authenticator.authenticate("Key " + other))
    assert authenticator.present("Key " + other) is authenticator.present("Key " + other)
    assert again.cache_key == kept.cache_key


def test_the_memo_is_bounded_oldest_out_first(services, monkeypatch):
    monkeypatch.setattr(authentication, "PRESENTED_CAPACITY", 2)
    authenticator, pats = _loaded(services, "u1", "u2", "u3")
    first = [authenticator.present("Key " + pat) for pat in pats]  # u1, u2, then u3 pushes u1
    assert authenticator.present("Key " + pats[2]) is first[2]
    assert authenticator.present("Key " + pats[1]) is first[1]
    assert authenticator.present("Key " + pats[0]) is not first[0]
