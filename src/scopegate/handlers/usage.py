"""Usage routes (scopegate extensions): a key's usage, authorized as GetKey; an app's, as
GetApp. On an app, who may list the owner's keys (the owner, an organization's admins:
ListKeys on the account) sees every credential's counts; anyone else the app admits sees
only their own: a person's credentials, or the API key that calls. And the requests of the
last 7 days of each key in a list (the portal's key lists), authorized as ListKeys or
ListAppKeys."""

from __future__ import annotations

from dataclasses import replace

from scopegate.auth.policy import Target
from scopegate.context import RequestContext
from scopegate.contract.extensions import ANSWER
from scopegate.contract.status import ApiError, does_not_exist
from scopegate.handlers import Handler
from scopegate.handlers.keys import find_key
from scopegate.services.usage import NOT_VISIBLE
from scopegate.services.usage_report import app_report, key_report, recent_totals, window
from scopegate.store import apps, keys
from scopegate.store.usage import CountRow

KEY_AUTHORIZED_AS = "GetKey"
APP_AUTHORIZED_AS = "GetApp"
QUERY = "usage_query"  # extras: {"from", "to", "granularity"} as sent
KEY_ID = "key_id"


def key_usage(ctx: RequestContext, request):
    span = window(ctx.extras.get(QUERY) or {})
    with ctx.services.engine.connect() as conn:
        record = find_key(conn, ctx, ctx.extras[KEY_ID])
        document = key_report(conn, record.public_id, span)
    ctx.extras[ANSWER] = {"usage": {"key_id": record.public_id, **document}}
    return ctx.spec.output_type()


def _sees_every_credential(ctx: RequestContext) -> bool:
    principal = ctx.principal
    if principal is None or principal.app is not None:
        return False  # an API key stands for its app, not for the owner
    try:
        ctx.authorize(
            principal, ctx.services.catalog.methods["ListKeys"], Target(ctx.target.user_id, "")
        )
    except ApiError:
        return False
    return True


def app_usage(ctx: RequestContext, request):
    span = window(ctx.extras.get(QUERY) or {})
    principal = ctx.principal
    assert principal is not None  # GetApp takes a credential
    owner, app_id = ctx.target.user_id, ctx.target.app_id
    everyone = _sees_every_credential(ctx)
    caller, credential = principal.user_id, principal.credential_id

    def shown(row: CountRow) -> CountRow | None:
        if everyone:
            if row.outcome == NOT_VISIBLE and row.caller_id != owner:
                # Someone with no standing on the app: counted, but not named to its owner.
                return replace(row, credential_id="", caller_id="")
            return row
        if principal.app is not None:
            return row if row.credential_id == credential else None
        return row if row.caller_id == caller else None

    def addresses_of(row: CountRow) -> bool:
        # A person's credential is used on other apps too: its addresses are shown to that
        # person, and to the owner for the owner's own credentials (API keys included).
        if principal.app is not None:
            return row.credential_id == credential
        return row.caller_id == caller or (everyone and row.caller_id == owner)

    with ctx.services.engine.connect() as conn:
        if apps.get(conn, owner, app_id) is None:
            raise does_not_exist()
        document = app_report(conn, owner, app_id, span, shown, addresses_of)
    scope = "all" if everyone else "own"
    ctx.extras[ANSWER] = {
        "usage": {"user_id": owner, "app_id": app_id, "credentials_shown": scope, **document}
    }
    return ctx.spec.output_type()


KEY_USAGE = Handler(key_usage)
APP_USAGE = Handler(app_usage)


RECENT_KEYS_AUTHORIZED_AS = "ListKeys"
RECENT_APP_KEYS_AUTHORIZED_AS = "ListAppKeys"
RECENT_DAYS = 7


def recent_requests(ctx: RequestContext, request):
    """Requests in the last 7 days of each of the target's keys (of the target app's, for
    ListAppKeys): `{public id: count}`, what the portal's key lists show beside last use."""
    with ctx.services.engine.connect() as conn:
        app_pk = None
        if ctx.target.app_id:
            app = apps.get(conn, ctx.target.user_id, ctx.target.app_id)
            if app is None:
                raise does_not_exist()
            app_pk = app.pk
        found = keys.list_for_user(conn, ctx.target.user_id, app_pk=app_pk, limit=10**6)
        totals = recent_totals(conn, [k.public_id for k in found], RECENT_DAYS)
    ctx.extras[ANSWER] = {k.public_id: totals.get(k.public_id, 0) for k in found}
    return ctx.spec.output_type()


RECENT = Handler(recent_requests)
