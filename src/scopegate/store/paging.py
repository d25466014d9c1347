"""Lists newest first, a page at a time: the order every list method answers in."""

from __future__ import annotations

from sqlalchemy import Select, Table


def newest_first(query: Select, table: Table, offset: int = 0, limit: int | None = None) -> Select:
    """`query` ordered by `table`'s creation time, newest first (ties: the later row
    first), from `offset`, at most `limit` rows."""
    ordered = query.order_by(table.c.created_at.desc(), table.c.id.desc()).offset(offset)
    return ordered if limit is None else ordered.limit(limit)
