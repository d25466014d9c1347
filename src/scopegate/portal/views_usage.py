"""A key's usage page in the portal: its last 30 days, read through the usage handler
dispatched as the signed-in user (authorized as GetKey)."""

from __future__ import annotations

from clarifai_grpc.grpc.api import service_pb2
from starlette.responses import Response

from scopegate.contract.extensions import ANSWER
from scopegate.handlers.usage import KEY_AUTHORIZED_AS, KEY_ID, KEY_USAGE, QUERY
from scopegate.portal.page import Page, signed_in
from scopegate.portal.usage_chart import daily_chart, last_days_query
from scopegate.portal.usage_reads import DAYS
from scopegate.portal.views_keys import _template_context, named_key


@signed_in
async def key_usage(page: Page) -> Response:
    place, key = await named_key(page)
    extras: dict = {QUERY: last_days_query(DAYS), KEY_ID: key.id}
    request = service_pb2.GetKeyRequest(user_app_id=place.ids())
    await page.call(KEY_AUTHORIZED_AS, request, handler=KEY_USAGE, extras=extras)
    usage = extras[ANSWER]["usage"]
    return page.render(
        "key_usage.html",
        key=key,
        usage=usage,
        chart=daily_chart(usage),
        days=DAYS,
        **_template_context(place),
    )
