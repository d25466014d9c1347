"""Portal pieces that need no browser: CSRF tokens, origin checks, forms, the scope picker."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from starlette.datastructures import FormData, Headers

from scopegate.auth.principal import CredentialKind
from scopegate.auth.tokens import SecretHasher
from scopegate.contract.status import ApiError, C
from scopegate.portal.app import STATIC_DIR
from scopegate.portal.forms import chosen_scopes, expiry_date, expiry_timestamp
from scopegate.portal.page import Portal
from scopegate.portal.scope_picker import build_picker
from scopegate.portal.session import CsrfSigner, same_origin


def test_csrf_tokens_are_bound_to_their_session_and_server_secret():
    signer = CsrfSigner(SecretHasher(b"k" * 32))
    token = signer.token("sgs_session-one")
    assert signer.valid("sgs_session-one", token)
    assert not signer.valid("sgs_session-two", token)
    assert not signer.valid("sgs_session-one", "")
    assert not signer.valid(None, token)
    assert not CsrfSigner(SecretHasher(b"o" * 32)).valid("sgs_session-one", token)
    # Never the stored digest of the session it is bound to.
    assert SecretHasher(b"k" * 32).digest("sgs_session-one").hex() not in token


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"host": "portal.test", "origin": "http://portal.test"}, True),
        ({"host": "portal.test", "origin": "https://portal.test"}, True),
        ({"host": "portal.test", "origin": "http://evil.test"}, False),
        ({"host": "portal.test", "origin": "null"}, False),
        ({"host": "portal.test", "sec-fetch-site": "cross-site"}, False),
        ({"host": "portal.test", "sec-fetch-site": "same-origin"}, True),
        ({"host": "portal.test"}, True),  # not a browser: the CSRF token still decides
    ],
)
def test_same_origin(headers, expected):
    assert same_origin(SimpleNamespace(headers=Headers(headers))) is expected


def test_all_alone_when_ticked_and_expiry_through_the_end_of_the_day():
    form = FormData([("scopes", "Inputs_Get"), ("scopes", "All"), ("scopes", "Inputs_Get")])
    assert chosen_scopes(form) == ["All"]
    assert chosen_scopes(FormData([("scopes", "b"), ("scopes", "a"), ("scopes", "a")])) == [
        "a",
        "b",
    ]
    ts = expiry_timestamp("2030-01-31")
    assert ts.ToJsonString() == "2030-01-31T23:59:59Z"
    assert expiry_date(ts) == "2030-01-31"
    assert expiry_timestamp("") is None and expiry_date(None) == ""
    with pytest.raises(ApiError):
        expiry_timestamp("31/01/2030")


def test_picker_groups_by_resource_and_keeps_what_it_does_not_offer():
    deps = [
        SimpleNamespace(scope="Inputs_Add", depending_scopes=["Inputs_Get"]),
        SimpleNamespace(scope="Inputs_Get", depending_scopes=[]),
        SimpleNamespace(scope="Predict", depending_scopes=[]),
        SimpleNamespace(scope="All", depending_scopes=[]),
    ]
    picker = build_picker(deps, ["Inputs_Get", "Legacy_Thing"])
    assert [g.resource for g in picker.groups] == ["Inputs", "Predict"]
    inputs = {c.name: c for c in picker.groups[0].choices}
    assert inputs["Inputs_Get"].checked and not inputs["Inputs_Add"].checked
    assert inputs["Inputs_Add"].depends_on == ("Inputs_Get",)
    assert picker.groups[1].choices[0].action == "Predict"
    assert picker.kept == ["Legacy_Thing"]
    assert not picker.all_checked and build_picker(deps, ["All"]).all_checked


def test_pages_link_to_no_other_site():
    """Templates and static files name no URL of another site (the CSP forbids it too)."""
    portal = STATIC_DIR.parent
    found = []
    for path in [*portal.glob("templates/*.html"), *STATIC_DIR.iterdir()]:
        found += [(path.name, url) for url in re.findall(r"\w+://[^\s\"'<>]+", path.read_text())]
    assert found == []


def test_the_session_cookie_is_checked_by_the_dispatchers_authentication():
    """As the session of an API call is: a bad cookie counts against its address's
    failed-authentication throttle, and only a session (never a PAT) signs a user in."""
    seen = []
    answers = iter(
        [
            ApiError(C.CONN_KEY_INVALID, "API key not found"),
            SimpleNamespace(kind=CredentialKind.PAT),
            SimpleNamespace(kind=CredentialKind.SESSION),
        ]
    )

    class Dispatcher:
        async def authenticate(self, authorization, session_token, peer):
            seen.append((authorization, session_token, peer))
            answer = next(answers)
            if isinstance(answer, ApiError):
                raise answer
            return answer

    portal = Portal(dispatcher=Dispatcher(), login=None, templates=None, signer=None)

    def principal(token: str):
        # A thread of its own: Playwright's sync API may hold this thread's event loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, portal.principal(token, "10.1.2.3")).result()

    assert principal("") is None  # no cookie: no call
    assert principal("sgs_bad") is None
    assert principal("sgp_pat") is None
    assert principal("sgs_good").kind is CredentialKind.SESSION
    assert seen == [
        (None, "sgs_bad", "10.1.2.3"),
        (None, "sgp_pat", "10.1.2.3"),
        (None, "sgs_good", "10.1.2.3"),
    ]
