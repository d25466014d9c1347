"""Rolling a key: a scopegate extension, authorized as PatchKeys (rolling patches a key)."""

from __future__ import annotations

from scopegate.context import RequestContext
from scopegate.handlers import Handler
from scopegate.handlers.convert import key_message
from scopegate.handlers.keys import find_key
from scopegate.services.keys import roll_key as roll

AUTHORIZED_AS = "PatchKeys"


def roll_key(ctx: RequestContext, request):
    """`request` is a PatchKeysRequest naming one key; the grace period is in extras."""
    grace = float(ctx.extras.get("grace_seconds", 0))
    with ctx.services.transaction() as conn:
        record = find_key(conn, ctx, ctx.extras["key_id"])
        rolled, secret = roll(conn, ctx.services.hasher, record, grace, actor=ctx.actor())
    return ctx.spec.output_type(keys=[key_message(rolled, secret=secret)])


ROLL = Handler(roll_key)
