"""Scope introspection: MyScopes, MyScopesUser, MyScopesRoot and ListScopes."""

from __future__ import annotations

from scopegate.auth.principal import CredentialKind
from scopegate.context import RequestContext
from scopegate.contract.catalog import AuthType
from scopegate.contract.status import invalid_argument
from scopegate.handlers import Handler


def my_scopes(ctx: RequestContext, request):
    """The calling credential's scopes and endpoints, and its app for an API key."""
    principal = ctx.principal
    output_type = ctx.spec.output_type
    response = output_type()
    response.scopes.extend(sorted(principal.scopes))  # half the cost of keyword arguments
    if principal.endpoints:
        response.endpoints.extend(sorted(principal.endpoints))
    app = principal.app
    if app is not None and _has_app(output_type):
        answer = response.app  # set in place: no message built to be copied in
        answer.id = app.app_id
        answer.user_id = app.user_id
    return response


_HAS_APP: dict[type, bool] = {}


def _has_app(output_type: type) -> bool:
    """Whether the answer has an `app` field (MyScopes' does), worked out once per type."""
    found = _HAS_APP.get(output_type)
    if found is None:
        found = _HAS_APP[output_type] = "app" in output_type.DESCRIPTOR.fields_by_name
    return found


def list_scopes(ctx: RequestContext, request):
    """For a key type: every scope it may hold with what that scope depends on, and every
    endpoint it may call with the scopes that endpoint requires."""
    key_type = request.key_type or CredentialKind.PAT.value
    if key_type not in (CredentialKind.PAT.value, CredentialKind.APP_KEY.value):
        raise invalid_argument(
            f"Unknown key_type '{key_type}': use personal_access_token or app_specific_key."
        )
    catalog = ctx.services.catalog
    response = ctx.spec.output_type()
    for scope in sorted(catalog.scopes.values(), key=lambda s: s.name):
        if scope.exposed and not scope.deprecated:
            response.scope_deps.add(scope=scope.name, depending_scopes=list(scope.depends_on))
    # API keys cannot call PAT-only or session-only methods.
    allowed = {AuthType.KEY_AUTH} | (
        {AuthType.PAT_AUTH} if key_type == CredentialKind.PAT.value else set()
    )
    for spec in sorted(catalog.methods.values(), key=lambda s: s.full_name):
        if spec.auth_type in allowed:
            response.endpoint_deps.add(
                endpoint=spec.full_name, depending_scopes=sorted(spec.scopes)
            )
    return response


HANDLERS = {
    "MyScopes": Handler(my_scopes, blocking=False),
    "MyScopesUser": Handler(my_scopes, blocking=False),
    "MyScopesRoot": Handler(my_scopes, blocking=False),
    "ListScopes": Handler(list_scopes, blocking=False),
}
