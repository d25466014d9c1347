"""Usage read for portal pages that show it beside other things: requests of the last 7
days in key lists, and an app's last 30 days on its settings page. Each reads through the
usage handlers, dispatched as the signed-in user (as ListKeys, ListAppKeys or GetApp)."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from scopegate.auth.policy import ME
from scopegate.contract.extensions import ANSWER
from scopegate.handlers.usage import (
    APP_AUTHORIZED_AS,
    APP_USAGE,
    QUERY,
    RECENT,
    RECENT_APP_KEYS_AUTHORIZED_AS,
    RECENT_KEYS_AUTHORIZED_AS,
)
from scopegate.portal.page import Page
from scopegate.portal.usage_chart import daily_chart, last_days_query

DAYS = 30


async def recent_requests(page: Page, app_id: str = "") -> dict[str, int]:
    """Requests in the last 7 days per key of the signed-in user (of its app `app_id`)."""
    extras: dict = {}
    ids = resources_pb2.UserAppIDSet(user_id=ME, app_id=app_id)
    if app_id:
        request = service_pb2.ListAppKeysRequest(user_app_id=ids)
        await page.call(RECENT_APP_KEYS_AUTHORIZED_AS, request, handler=RECENT, extras=extras)
    else:
        request = service_pb2.ListKeysRequest(user_app_id=ids)
        await page.call(RECENT_KEYS_AUTHORIZED_AS, request, handler=RECENT, extras=extras)
    return extras.get(ANSWER, {})


async def with_recent_requests(page: Page, rows: list[dict], app_id: str = "") -> list[dict]:
    """Key list rows with `requests_7d` beside their last use."""
    totals = await recent_requests(page, app_id)
    return [{**row, "requests_7d": totals.get(row["key"].id, 0)} for row in rows]


async def app_usage(page: Page, app_id: str) -> dict:
    """The app's usage document for the last 30 days, and its chart."""
    extras: dict = {QUERY: last_days_query(DAYS)}
    request = service_pb2.GetAppRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=ME, app_id=app_id)
    )
    await page.call(APP_AUTHORIZED_AS, request, handler=APP_USAGE, extras=extras)
    usage = extras[ANSWER]["usage"]
    return {"usage": usage, "chart": daily_chart(usage), "days": DAYS}
