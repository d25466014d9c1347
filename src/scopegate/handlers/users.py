"""GetUser."""

from __future__ import annotations

from scopegate.context import RequestContext
from scopegate.contract.status import does_not_exist
from scopegate.handlers import Handler
from scopegate.handlers.convert import user_message
from scopegate.store import users


def get_user(ctx: RequestContext, request):
    with ctx.services.engine.connect() as conn:
        user = users.get(conn, ctx.target.user_id)
    if user is None:
        raise does_not_exist()
    return ctx.spec.output_type(user=user_message(user))


HANDLERS = {"GetUser": Handler(get_user)}
