"""Helpers for the portal's browser tests: Chromium via Playwright, screenshots, checks.

The browser is Debian's `chromium` (installed by `tools/dev.py test`), never one that
Playwright downloads. Screenshots go to `test-output/portal/` (git-ignored), under the
directory the test run writes its output to.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.portal.app import page_routes

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEST_OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
SCREENSHOTS = TEST_OUTPUT / "portal"
PASSWORD = "blue-Harbor-42"
SECRET = re.compile(r"^sg[pk]_[0-9A-Za-z]{36}$")
# Any scopegate secret (PAT, API key, session), wherever it might appear in a URL.
SECRET_ANYWHERE = re.compile(r"sg[pks]_[0-9A-Za-z]{8,}")
NARROW = 360  # px: a small phone

# The portal's pages: every GET route, as the regex of its path under /portal.
PAGE_ROUTES = {route.path: route.path_regex for route in page_routes() if "GET" in route.methods}

# Every visible form control must have a label (or an aria-label): run on each page shot.
UNLABELLED_CONTROLS = """
() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => {
    if (el.tagName === 'BUTTON') return !(el.textContent.trim() || el.getAttribute('aria-label'));
    return !((el.labels && el.labels.length) || el.getAttribute('aria-label'));
  })
  .map((el) => el.outerHTML)
"""
# Forms that change something (method=post) without a CSRF token field.
FORMS_WITHOUT_CSRF = """
() => [...document.querySelectorAll('form')]
  .filter((form) => form.method.toLowerCase() === 'post')
  .filter((form) => !form.querySelector('input[type=hidden][name=csrf_token]')?.value)
  .map((form) => form.outerHTML.slice(0, 200))
"""
# Every URL the page itself links to or submits to.
PAGE_URLS = """
() => [
  ...[...document.querySelectorAll('[href]')].map((el) => el.href),
  ...[...document.querySelectorAll('[src]')].map((el) => el.src),
  ...[...document.querySelectorAll('form')].map((el) => el.action),
]
"""


class Traffic:
    """Every request a browser context makes (navigations, redirects, assets, forms)."""

    def __init__(self, context, base: str) -> None:
        self.base = base
        self.urls: list[str] = []
        context.on("request", lambda request: self.urls.append(request.url))

    def check(self) -> None:
        """Nothing fetched from anywhere but the server under test, and no secret in a URL
        (a redirect's target is a request URL too)."""
        origin = urlsplit(self.base)
        elsewhere = [
            url
            for url in self.urls
            if not url.startswith(("data:", "about:", "blob:"))
            and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
        ]
        assert elsewhere == [], f"requests outside the server under test: {elsewhere}"
        leaked = [url for url in self.urls if SECRET_ANYWHERE.search(url)]
        assert leaked == [], f"secrets in URLs: {leaked}"


def page_route(url: str) -> str | None:
    """The portal route (as written in page_routes) a URL's page is served by."""
    path = urlsplit(url).path
    if not path.startswith("/portal"):
        return None
    path = path[len("/portal") :] or "/"
    for route, regex in PAGE_ROUTES.items():
        if regex.match(path):
            return route
    return None


def assert_no_secret_in_links(page) -> None:
    """No link, source or form target on the page (nor its own address) holds a secret."""
    urls = [*page.evaluate(PAGE_URLS), page.url]
    leaks = [url for url in urls if SECRET_ANYWHERE.search(url)]
    assert leaks == [], f"secrets in URLs on {page.url}: {leaks}"


def snap(page, name: str) -> Path:
    """Screenshot the page under test-output/portal/ after checking that every control is
    labelled, every form that posts carries a CSRF token, and no link or form on it
    carries a secret."""
    page.wait_for_load_state()  # a click that navigates may return before the new DOM
    unlabelled = page.evaluate(UNLABELLED_CONTROLS)
    assert unlabelled == [], f"controls without a label on {page.url}: {unlabelled}"
    assert "Traceback" not in page.content()
    assert page.evaluate(FORMS_WITHOUT_CSRF) == [], f"a form without a CSRF token on {page.url}"
    assert_no_secret_in_links(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sideways_scroll(page) -> int:
    """How many pixels the page scrolls sideways (0 when it fits the viewport)."""
    page.wait_for_load_state()
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def sign_up(page, base: str, user_id: str, email: str | None = None) -> str:
    """Sign up through the form; returns the default PAT the page shows once."""
    page.goto(f"{base}/portal/signup")
    page.get_by_label("Email").fill(email or f"{user_id}@example.com")
    page.get_by_label("User id").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_selector("#new-secret")
    return page.input_value("#new-secret")


def log_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def read_clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def copy_secret(page, *, keyboard: bool = False) -> str:
    """Press the page's Copy button (with the mouse, or Tab and Enter) and return what
    landed on the clipboard: the text the tests then use as the credential."""
    shown = page.input_value("#new-secret")
    assert_no_secret_in_links(page)  # the page that shows it once links nowhere with it
    page.evaluate("navigator.clipboard.writeText('')")  # no leftover from an earlier copy
    if keyboard:
        tab_to(page, "#copy-secret")
        page.keyboard.press("Enter")
    else:
        page.click("#copy-secret")
    page.wait_for_selector("#copy-status:has-text('Copied to the clipboard.')")
    copied = read_clipboard(page)
    assert copied == shown
    assert SECRET.match(copied), copied
    return copied


def focused(page, selector: str) -> bool:
    return page.evaluate(
        "(s) => !!document.activeElement && document.activeElement.matches(s)", selector
    )


def tab_to(page, selector: str, limit: int = 400) -> int:
    """Press Tab until `selector` has the focus, as a keyboard user would; returns the number
    of presses. Fails when it is never reached (not focusable, or out of the tab order)."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if focused(page, selector):
            return presses
    raise AssertionError(f"{selector} never got the focus after {limit} Tab presses")


def focus_is_visible(page) -> bool:
    style = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; })()"
    )
    return style[0] != "none" and style[1] != "0px"


def tick(page, scope: str) -> None:
    page.check(f"#scope-{scope}")


def untick(page, scope: str) -> None:
    page.uncheck(f"#scope-{scope}")


def ticked(page, scope: str) -> bool:
    return page.is_checked(f"#scope-{scope}")


def row(page, table: str, text: str):
    """The table row containing `text`."""
    return page.locator(f"#{table} tbody tr", has_text=text)


def ids(user_id: str = "me", app_id: str = "") -> resources_pb2.UserAppIDSet:
    return resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id)


def auth(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Key {secret}"),)
