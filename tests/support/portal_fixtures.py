"""The portal tests' shared pieces: a server of their own, one Chromium per module, and
signed-up accounts whose pages are checked after every test (no JavaScript error, nothing
the CSP blocked, nothing fetched from elsewhere, no secret in a URL). Test modules import
the fixtures they use by name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.support.clients import make_stub, new_id
from tests.support.portal import CHROMIUM, CHROMIUM_ARGS, Traffic, sign_up
from tests.support.server_process import ServerProcess

WIDE = 1280


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory) -> Iterator[ServerProcess]:
    """A server of the portal tests' own: login throttling counts per process."""
    process = ServerProcess(data_dir=tmp_path_factory.mktemp("portal"), database_url=None)
    process.start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def base(portal_server) -> str:
    return portal_server.http_url


@pytest.fixture(scope="module")
def stub(portal_server):
    return make_stub(portal_server, "grpc")


# Per module, not per session: while open, Playwright's sync API keeps an event loop
# running on this thread, and a later test of the same worker calling asyncio.run fails.
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: `python3 tools/dev.py test` installs it as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Browsing:
    """One browser context (its own cookies) and one page, checked after each test: no
    JavaScript error nor anything the Content-Security-Policy blocked, nothing fetched from
    anywhere but the server under test, no secret in any URL."""

    def __init__(self, browser, base: str) -> None:
        self.context = browser.new_context(
            viewport={"width": WIDE, "height": 900},
            permissions=["clipboard-read", "clipboard-write"],
            locale="en-US",
        )
        self.context.set_default_timeout(10_000)
        self.traffic = Traffic(self.context, base)
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:  # something the policy had to block
            self.errors.append(message.text)

    def check(self) -> None:
        errors, self.errors[:] = list(self.errors), []
        assert errors == [], f"JavaScript errors: {errors}"
        try:
            self.traffic.check()
        finally:
            self.traffic.urls.clear()


class Contexts:
    """Fresh browser contexts for one test, checked and closed after it."""

    def __init__(self, browser, base: str) -> None:
        self.browser, self.base = browser, base
        self._open: list[Browsing] = []

    def page(self):
        self._open.append(Browsing(self.browser, self.base))
        return self._open[-1].page

    def close(self) -> None:
        for browsing in self._open:
            browsing.context.close()
        for browsing in self._open:
            browsing.check()
        self._open.clear()


@pytest.fixture
def contexts(browser, base) -> Iterator[Contexts]:
    made = Contexts(browser, base)
    yield made
    made.close()


@pytest.fixture
def page(contexts):
    """A visitor with no cookies of their own."""
    return contexts.page()


@dataclass(frozen=True)
class Account:
    """A user signed up (through the portal) once for the module, with a signed-in page
    that the tests share: a browser context costs more than most steps of a test."""

    user_id: str
    pat: str  # the default PAT shown at sign-up
    browsing: Browsing

    @property
    def email(self) -> str:
        return f"{self.user_id}@example.com"

    @property
    def page(self):
        return self.browsing.page


def _account(browser, base: str, prefix: str) -> Iterator[Account]:
    browsing = Browsing(browser, base)
    user_id = new_id(prefix)
    pat = sign_up(browsing.page, base, user_id)
    browsing.check()
    yield Account(user_id, pat, browsing)
    browsing.context.close()


@contextmanager
def _shared(browsing: Browsing) -> Iterator[None]:
    """Around a test using a shared page: the usual width before, the checks after."""
    browsing.page.set_viewport_size({"width": WIDE, "height": 900})
    browsing.check()  # what an earlier test left is that test's business
    yield
    browsing.check()


@pytest.fixture(scope="module")
def alice_account(browser, base) -> Iterator[Account]:
    yield from _account(browser, base, "alice")


@pytest.fixture(scope="module")
def bob_account(browser, base) -> Iterator[Account]:
    yield from _account(browser, base, "bob")


@pytest.fixture(scope="module")
def visitor_browsing(browser, base) -> Iterator[Browsing]:
    browsing = Browsing(browser, base)
    yield browsing
    browsing.context.close()


@pytest.fixture
def alice(alice_account) -> Iterator[Account]:
    with _shared(alice_account.browsing):
        yield alice_account


@pytest.fixture
def bob(bob_account) -> Iterator[Account]:
    with _shared(bob_account.browsing):
        yield bob_account


@pytest.fixture
def visitor(visitor_browsing):
    """A page that never signs in (it may fail to), shared by the module."""
    with _shared(visitor_browsing):
        yield visitor_browsing.page
