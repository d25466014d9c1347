"""Helpers for the portal's browser tests: Chromium via Playwright, screenshots, checks.

The browser is Debian's `chromium` (installed by `tools/dev.py test`), never one that
Playwright downloads. Screenshots go to `test-output/portal/` (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

from clarifai_grpc.grpc.api import resources_pb2

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
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "portal"
PASSWORD = "blue-Harbor-42"
SECRET = re.compile(r"^sg[pk]_[0-9A-Za-z]{36}$")

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


def snap(page, name: str) -> Path:
    """Screenshot the page under test-output/portal/ after checking every control is labelled."""
    unlabelled = page.evaluate(UNLABELLED_CONTROLS)
    assert unlabelled == [], f"controls without a label on {page.url}: {unlabelled}"
    assert "Traceback" not in page.content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


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


def copy_secret(page) -> str:
    """Click the page's Copy button and return what landed on the clipboard."""
    shown = page.input_value("#new-secret")
    page.click("#copy-secret")
    page.wait_for_selector("#copy-status:has-text('Copied to the clipboard.')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown
    assert SECRET.match(copied), copied
    return copied


def tick(page, scope: str) -> None:
    page.check(f"#scope-{scope}")


def ticked(page, scope: str) -> bool:
    return page.is_checked(f"#scope-{scope}")


def row(page, table: str, text: str):
    """The table row containing `text`."""
    return page.locator(f"#{table} tbody tr", has_text=text)


def ids(user_id: str = "me", app_id: str = "") -> resources_pb2.UserAppIDSet:
    return resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id)


def auth(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Key {secret}"),)
