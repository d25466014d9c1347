"""What a change evicts, recorded one way: in the change log, which every process polls
(within the poll interval), and queued for this process, which drops it at once when the
transaction commits (never before: a read between the eviction and the commit would cache
the old state again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from scopegate.store import changes

# Where a transaction opened by `transaction` keeps its queue: the connection's info,
# which lives as long as the pooled connection, so it is removed before the pool has it.
_PENDING = "scopegate.pending_evictions"

Evict = Callable[[str, str], None]


def record(conn: Connection, subject: str, subject_id: str) -> None:
    """Log a change of `subject` (`key`, `session`, `user`, `app` as `owner/app`, `org`)."""
    changes.record(conn, subject, subject_id)
    pending = conn.info.get(_PENDING)
    if pending is not None:
        pending.append((subject, subject_id))


@contextmanager
def transaction(engine: Engine, evict: Evict) -> Iterator[Connection]:
    """A write transaction; once it has committed, `evict` gets each change it recorded.
    (Outside one, as in the CLI, other processes still learn of changes from the log.)"""
    pending: list[tuple[str, str]] = []
    with engine.begin() as conn:
        conn.info[_PENDING] = pending
        try:
            yield conn
        finally:
            conn.info.pop(_PENDING, None)
    for subject, subject_id in dict.fromkeys(pending):
        evict(subject, subject_id)
