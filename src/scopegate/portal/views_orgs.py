"""Organizations the signed-in user belongs to.

ORGANIZATIONS: not wired yet. Organizations are being added to scopegate (an extension
route `GET /v2/users/{user_id}/organizations`); when its handler lands, dispatch it here
like every other portal call and list the results in organizations.html.
"""

from __future__ import annotations

from starlette.responses import Response

from scopegate.portal.page import Page, signed_in


@signed_in
async def organizations(page: Page) -> Response:
    return page.render("organizations.html", organizations=None, active="orgs")
