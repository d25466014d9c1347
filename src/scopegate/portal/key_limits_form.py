"""The limits section of the key form (rates, usage quota with refill, allowed addresses),
read and written through the limits extension (GET|PUT .../keys/{key_id}/limits), as the
signed-in user: authorized like GetKey and PatchKeys, audited, evicted everywhere."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.auth.policy import ME
from scopegate.contract import extensions as ext
from scopegate.handlers.key_limits import KEEP_COUNT
from scopegate.portal.forms import text
from scopegate.portal.page import Page

FIELDS = ("rate_limits", "usage_remaining", "usage_refill", "allowed_ips", "shown_remaining")
EMPTY = dict.fromkeys(FIELDS, "")


def _request():
    return ext.ExtensionRequest(user_app_id=resources_pb2.UserAppIDSet(user_id=ME))


def form_values(page: Page) -> dict:
    return {name: text(page.form, name, 5000) for name in FIELDS}


def _words(value: str) -> list[str]:
    return value.replace(",", " ").split()


def given(values: dict) -> bool:
    return any(values[name].strip() for name in FIELDS if name != "shown_remaining")


def body(values: dict) -> dict:
    """The PUT body the form's fields stand for (checked by the handler, whose refusal the
    form shows)."""
    document: dict = {
        "rate_limits": _words(values["rate_limits"]),
        "allowed_ips": _words(values["allowed_ips"]),
    }
    remaining = values["usage_remaining"].strip()
    if remaining:
        usage: dict = {"remaining": int(remaining) if remaining.isdigit() else remaining}
        refill = values["usage_refill"].strip()
        if refill:
            interval, _, amount = refill.partition(":")
            usage["refill"] = {
                "interval": interval.strip(),
                "amount": int(amount) if amount.strip().isdigit() else amount,
            }
        document["usage"] = usage
    return document


async def read(page: Page, key_id: str) -> dict:
    """The form's values for a key's current limits."""
    extras = {ext.PATH: {"key_id": key_id}, ext.BODY: {}}
    await page.call(ext.GET_KEY_LIMITS, _request(), extras=extras)
    limits = extras[ext.ANSWER]["limits"]
    usage = limits["usage"] or {}
    refill = usage.get("refill")
    remaining = str(usage["remaining"]) if "remaining" in usage else ""
    return {
        "rate_limits": ", ".join(limits["rate_limits"]),
        "usage_remaining": remaining,
        "usage_refill": f"{refill['interval']}:{refill['amount']}" if refill else "",
        "allowed_ips": "\n".join(limits["allowed_ips"]),
        "shown_remaining": remaining,
    }


async def write(page: Page, key_id: str, values: dict) -> None:
    """Set the key's limits; a remaining count left as it was shown keeps the live count
    (requests made meanwhile stay spent)."""
    keep = (
        bool(values["shown_remaining"])
        and values["usage_remaining"].strip() == (values["shown_remaining"])
    )
    extras = {ext.PATH: {"key_id": key_id}, ext.BODY: body(values), KEEP_COUNT: keep}
    await page.call(ext.PUT_KEY_LIMITS, _request(), extras=extras)
