"""Organizations the signed-in user belongs to: the extension method behind `GET
/v2/users/me/organizations`, dispatched for the session like every portal call, so the
page and the route share the authorization and the answer and cannot disagree.
"""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2
from starlette.responses import Response

from scopegate.auth.policy import ME
from scopegate.contract import extensions
from scopegate.portal.page import Page, signed_in


@signed_in
async def organizations(page: Page) -> Response:
    spec, extras = extensions.LIST_ORGANIZATIONS, {}
    request = spec.input_type(user_app_id=resources_pb2.UserAppIDSet(user_id=ME))
    await page.call(spec, request, extras=extras)
    found = extras[extensions.ANSWER]["organizations"]
    return page.render("organizations.html", organizations=found, active="orgs")
