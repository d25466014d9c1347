"""Handlers, one module per resource family. Each module lists what it handles in
`HANDLERS`; this package merges them. Handlers receive an authorized `RequestContext`
and never re-check authorization. Imports context, services/ (every write), store/ (reads),
media/, runners/, auth/ and contract/; never a transport.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message


@dataclass(frozen=True, slots=True)
class Handler:
    fn: Callable[..., Message]
    # Blocking handlers (database access) run in a worker thread, off the event loop.
    blocking: bool = True
    # `fn` returns an awaitable, awaited on the event loop (a forwarded call: gateway/).
    awaits: bool = False


# One line per module: features added side by side touch separate lines.
HANDLER_MODULES = (
    "status_codes",
    "users",
    "apps",
    "keys",
    "scopes",
    "passwords",
    "audit",
    "collaborators",
    "concepts",
    "inputs",
    "models",
    "outputs",
    "organizations",
    "key_limits",
    "app_patch",
    "input_count",
    "model_types",
    "key_resources",
    "denials",
    "org_policies",
)


def all_handlers() -> dict[str, Handler]:
    merged: dict[str, Handler] = {}
    for name in HANDLER_MODULES:
        module = importlib.import_module(f"scopegate.handlers.{name}")
        overlap = merged.keys() & module.HANDLERS.keys()
        if overlap:
            raise RuntimeError(f"methods handled twice: {sorted(overlap)}")
        merged.update(module.HANDLERS)
    return merged
