"""Organizations the signed-in user belongs to.

Organizations have no Clarifai method, so there is no dispatcher call: the page runs the
operation behind `GET /v2/users/me/organizations` (`rest_orgs.list_mine`) through the REST
routes' own `run_as`, for the session's principal, so the portal and the REST route share
the credential check, the transaction and the answer and cannot disagree.
"""

from __future__ import annotations

from starlette.responses import Response

from scopegate.auth.policy import ME
from scopegate.portal.page import Page, signed_in
from scopegate.transports.rest.orgs import list_mine


@signed_in
async def organizations(page: Page) -> Response:
    result = await page.portal.organizations.run_as(
        page.principal,
        list_mine,
        {"user_id": ME},
        {},
        client_address=page.peer,
        request_id=page.portal.dispatcher.new_request_id(),
    )
    return page.render("organizations.html", organizations=result["organizations"], active="orgs")
