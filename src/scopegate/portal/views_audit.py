"""The signed-in user's credential events, from PostAuditLogSearches."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from starlette.responses import Response

from scopegate.portal.page import Page, signed_in

PER_PAGE = 200


@signed_in
async def audit(page: Page) -> Response:
    reply = await page.call(
        "PostAuditLogSearches",
        service_pb2.PostAuditLogSearchesRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
            pagination=service_pb2.Pagination(page=1, per_page=PER_PAGE),
        ),
    )
    return page.render("audit.html", entries=reply.entries, limit=PER_PAGE, active="audit")
