"""Rolling a key: a scopegate extension, authorized as PatchKeys (rolling patches a key)."""

from __future__ import annotations

from scopegate.context import RequestContext
from scopegate.handlers import Handler
from scopegate.handlers.convert import key_message
from scopegate.handlers.keys import find_key
from scopegate.services import accounts
from scopegate.store import keys

AUTHORIZED_AS = "PatchKeys"


def roll_key(ctx: RequestContext, request):
    """`request` is a PatchKeysRequest naming one key; the grace period is in extras."""
    grace = float(ctx.extras.get("grace_seconds", 0))
    with ctx.services.engine.begin() as conn:
        record = find_key(conn, ctx, ctx.extras["key_id"])
        secret = accounts.roll_key(conn, ctx.services.hasher, record, grace)
        ctx.actor().record(conn, "key.roll", f"key:{record.public_id}", f"grace_seconds={grace:g}")
        rolled = keys.get(conn, record.user_id, record.public_id)
    ctx.services.evict(record.public_id)
    return ctx.spec.output_type(keys=[key_message(rolled, secret=secret)])


ROLL = Handler(roll_key)
