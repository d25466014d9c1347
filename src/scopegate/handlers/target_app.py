"""The app a request names, for handlers of resources that belong to an app."""

from __future__ import annotations

from sqlalchemy import Connection

from scopegate.context import RequestContext
from scopegate.contract.status import does_not_exist
from scopegate.store import apps
from scopegate.store.records import AppRecord


def target_app(conn: Connection, ctx: RequestContext) -> AppRecord:
    """The app row of `ctx.target`; a missing app answers 11101 like an invisible one."""
    app = apps.get(conn, ctx.target.user_id, ctx.target.app_id) if ctx.target.app_id else None
    if app is None:
        raise does_not_exist()
    return app
