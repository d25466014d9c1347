"""Handlers, one module per resource family. Each module lists what it handles in
`HANDLERS`; this package merges them. Handlers receive an authorized `RequestContext`
and never re-check authorization.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message


@dataclass(frozen=True, slots=True)
class Handler:
    fn: Callable[..., Message]
    # Blocking handlers (database access) run in a worker thread, off the event loop.
    blocking: bool = True


def all_handlers() -> dict[str, Handler]:
    from scopegate.handlers import (
        apps,
        audit,
        collaborators,
        keys,
        passwords,
        scopes,
        status_codes,
        users,
    )

    merged: dict[str, Handler] = {}
    for module in (status_codes, users, apps, keys, scopes, passwords, audit, collaborators):
        overlap = merged.keys() & module.HANDLERS.keys()
        if overlap:
            raise RuntimeError(f"methods handled twice: {sorted(overlap)}")
        merged.update(module.HANDLERS)
    return merged
