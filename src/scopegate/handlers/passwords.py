"""PostValidatePassword: check a candidate password against the documented policy."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2

from scopegate.auth import passwords
from scopegate.context import RequestContext
from scopegate.contract.status import C
from scopegate.handlers import Handler
from scopegate.store import users


def validate_password(ctx: RequestContext, request):
    with ctx.services.engine.connect() as conn:
        user = users.get(conn, ctx.principal.user_id)
    violations = passwords.violations(
        request.password.plaintext,
        user_id=user.user_id if user else "",
        email=user.email if user else "",
    )
    response = ctx.spec.output_type(
        password_violations=resources_pb2.PasswordViolations(**dict.fromkeys(violations, True))
    )
    if violations:
        response.status.code = C.CONN_INVALID_REQUEST
        response.status.description = "Password does not meet the policy"
        response.status.details = "; ".join(passwords.describe(v) for v in violations)
    return response


HANDLERS = {"PostValidatePassword": Handler(validate_password)}
