"""The app a request names, for handlers of resources that belong to an app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection

from scopegate.context import RequestContext
from scopegate.contract.status import does_not_exist
from scopegate.handlers.paging import offset_limit
from scopegate.store import apps
from scopegate.store.records import AppRecord

Item = TypeVar("Item")


class Paging(Protocol):
    """A request's paging fields (the request itself, or its `pagination`)."""

    page: int
    per_page: int


def target_app(conn: Connection, ctx: RequestContext) -> AppRecord:
    """The app row of `ctx.target`; a missing app answers 11101 like an invisible one."""
    app = apps.get(conn, ctx.target.user_id, ctx.target.app_id) if ctx.target.app_id else None
    if app is None:
        raise does_not_exist()
    return app


@contextmanager
def reading_app(ctx: RequestContext) -> Iterator[tuple[Connection, AppRecord]]:
    """A connection for reading, and the app of `ctx.target` read through it."""
    with ctx.services.engine.connect() as conn:
        yield conn, target_app(conn, ctx)


def app_item(
    conn: Connection,
    app: AppRecord,
    get: Callable[[Connection, int, str], Item | None],
    kind: str,
    item_id: str,
) -> Item:
    """The `kind` (Concept, Input) `item_id` of `app`, as `get(conn, app.pk, item_id)` reads
    it; a missing or unnamed one answers 11101 naming it."""
    found = get(conn, app.pk, item_id) if item_id else None
    if found is None:
        raise does_not_exist(f"{kind} '{item_id}' is not in this app.")
    return found


def read_app_item(
    ctx: RequestContext,
    get: Callable[[Connection, int, str], Item | None],
    kind: str,
    item_id: str,
) -> tuple[Item, AppRecord]:
    """The `kind` `item_id` of the app of `ctx.target` (as `app_item` finds it), and that app."""
    with reading_app(ctx) as (conn, app):
        return app_item(conn, app, get, kind, item_id), app


def read_app_page(
    ctx: RequestContext,
    paging: Paging,
    list_items: Callable[..., list[Item]],
    **filters: Any,
) -> tuple[list[Item], AppRecord]:
    """A page of the items of the app of `ctx.target`, as `list_items(conn, app.pk,
    offset=..., limit=..., **filters)` reads them, and that app; a bad page size answers
    before anything is read."""
    offset, limit = offset_limit(paging.page, paging.per_page)
    with reading_app(ctx) as (conn, app):
        return list_items(conn, app.pk, offset=offset, limit=limit, **filters), app
