"""Organizations the signed-in user belongs to.

Organizations have no Clarifai method, so there is no dispatcher call: the page runs the
very operation behind `GET /v2/users/me/organizations` (`rest_orgs.list_mine`) for the
session's principal, so the portal and the REST route cannot disagree.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from scopegate.accounts import Actor
from scopegate.auth.policy import ME
from scopegate.portal.page import Page, signed_in
from scopegate.transports.rest_orgs import list_mine


def _mine(page: Page) -> list[dict]:
    principal = page.principal
    actor = Actor(
        user_id=principal.user_id,
        credential_kind=principal.kind.value,
        credential_id=principal.credential_id,
        client_address=page.peer,
    )
    with page.portal.dispatcher.services.engine.begin() as conn:
        return list_mine(conn, principal, actor, {"user_id": ME}, {})["organizations"]


@signed_in
async def organizations(page: Page) -> Response:
    found = await asyncio.to_thread(_mine, page)
    return page.render("organizations.html", organizations=found, active="orgs")
