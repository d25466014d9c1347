"""How many items one request may carry, read off the request's own message type.

Every repeated field of a request (keys, apps, inputs, concepts, ids, ...) holds at most
`MAX_ITEMS` entries, Clarifai's own limit for most methods; the lists nested inside those
items (an input's concepts, a key's scopes) hold at most `MAX_NESTED_ITEMS` entries in all.
Both are checked before anything touches the database, so one request can neither hold a
write lock for seconds nor build a statement with more variables than SQLite takes (32766).
No table of methods: the limits follow from each message's descriptor, cached per type.
"""

from __future__ import annotations

import threading

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from scopegate.contract.status import ApiError, invalid_argument

MAX_ITEMS = 128
MAX_NESTED_ITEMS = MAX_ITEMS * MAX_ITEMS

# Nested lists of numbers are vectors and coordinates (embeddings, polygons): their size
# is bounded by the message size and never becomes rows or SQL variables. Lists of
# messages and of strings (ids, names) do.
_COUNTED = frozenset({FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_STRING})
# Struct, ListValue, FieldMask, ...: JSON-like values stored whole, never item by item.
_WELL_KNOWN = "google.protobuf."

# One step of a walk: (field name, repeated, counted, plan of the field's message type).
_Step = tuple[str, bool, bool, "list[_Step] | None"]
_plans: dict[Descriptor, list[_Step]] = {}
_building: set[Descriptor] = set()
_requests: dict[type, tuple[tuple[str, ...], list[_Step]]] = {}
_lock = threading.Lock()


def _is_map(described: FieldDescriptor) -> bool:
    entry = described.message_type
    return entry is not None and entry.GetOptions().map_entry


def _plan(descriptor: Descriptor) -> list[_Step]:
    """The fields of `descriptor` that are, or may lead to, counted lists. Built once per
    type; a type that contains itself (Data -> Region -> Data) reuses the list being built."""
    plan = _plans.get(descriptor)
    if plan is not None:
        return plan
    plan = _plans[descriptor] = []
    _building.add(descriptor)
    for described in descriptor.fields:
        if _is_map(described):
            continue
        entry = described.message_type
        sub = None
        if entry is not None and not entry.full_name.startswith(_WELL_KNOWN):
            sub = _plan(entry)
            if not sub and entry not in _building:
                sub = None  # nothing countable below: never walked
        repeated = described.is_repeated
        counted = repeated and described.type in _COUNTED
        if counted or sub is not None:
            plan.append((described.name, repeated, counted, sub))
    _building.discard(descriptor)
    return plan


def _request_plan(cls: type) -> tuple[tuple[str, ...], list[_Step]]:
    # Under a lock: a plan being built is visible in `_plans` before it is complete. A
    # request type's entry is published only once complete, so readers need no lock.
    with _lock:
        descriptor = cls.DESCRIPTOR
        # Every top-level list is capped, enums and numbers too (filters go into SQL).
        top = tuple(f.name for f in descriptor.fields if f.is_repeated and not _is_map(f))
        found = _requests[cls] = (top, _plan(descriptor))
        return found


def _nested(message: Message, plan: list[_Step]) -> int:
    """How many entries the counted lists inside `message` hold, at any depth."""
    total = 0
    for name, repeated, counted, sub in plan:
        if repeated:
            items = getattr(message, name)
            if counted:
                total += len(items)
            if sub:
                for item in items:
                    total += _nested(item, sub)
        elif message.HasField(name):
            total += _nested(getattr(message, name), sub)
    return total


def too_many_items(request: Message) -> ApiError | None:
    """The refusal (CONN_INVALID_REQUEST) of a request carrying too many items, else None.

    Every list entry takes at least one byte on the wire (a nested one, a message or a
    string, two: tag and length), so the serialized size alone clears most requests."""
    size = request.ByteSize()
    if size <= MAX_ITEMS:
        return None
    cls = type(request)
    top, plan = _requests.get(cls) or _request_plan(cls)
    for name in top:
        count = len(getattr(request, name))
        if count > MAX_ITEMS:
            return invalid_argument(
                f"At most {MAX_ITEMS} {name} per request ('{name}' has {count}): "
                "split it into several requests."
            )
    if size > 2 * MAX_NESTED_ITEMS and plan:
        # The top-level lists were capped above: count only what lies inside them.
        nested = _nested(request, plan) - sum(
            len(getattr(request, name)) for name, _, counted, _ in plan if counted
        )
        if nested > MAX_NESTED_ITEMS:
            return invalid_argument(
                f"The lists inside this request's items hold {nested} entries in all (the "
                f"longest: '{_longest(request, plan, '')[1]}'); at most {MAX_NESTED_ITEMS} "
                "per request: split it into several requests."
            )
    return None


def _longest(message: Message, plan: list[_Step], prefix: str) -> tuple[int, str]:
    """The longest counted list inside `message` and its path: only for a refusal."""
    best = (-1, "")
    for name, repeated, counted, sub in plan:
        path = prefix + name
        if repeated:
            items = getattr(message, name)
            if counted and prefix and len(items) > best[0]:  # top-level ones are capped
                best = (len(items), path)
            for index, item in enumerate(items if sub else ()):
                found = _longest(item, sub, f"{path}[{index}].")
                best = found if found[0] > best[0] else best
        elif message.HasField(name):
            found = _longest(getattr(message, name), sub, path + ".")
            best = found if found[0] > best[0] else best
    return best
