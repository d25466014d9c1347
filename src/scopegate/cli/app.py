"""The `scopegate` command: the root Typer app, its command groups, and `main`."""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.apps import apps_app
from scopegate.cli.audit import audit
from scopegate.cli.backup import backup, restore
from scopegate.cli.common import with_database
from scopegate.cli.db import db_app
from scopegate.cli.explain import explain
from scopegate.cli.keys import keys_app
from scopegate.cli.models import models_app
from scopegate.cli.org_policies import org_approve, org_deny, org_policy, org_token_requests
from scopegate.cli.orgs import orgs_app
from scopegate.cli.serve import serve
from scopegate.cli.usage import apps_usage, keys_usage
from scopegate.cli.users import users_app

app = typer.Typer(
    help="scopegate: Clarifai-compatible identity and access server.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(wanted: bool) -> None:
    if wanted:
        # The contract is whatever clarifai-grpc's descriptors say (contract/catalog.py).
        print(
            f"scopegate {metadata.version('scopegate')} "
            f"(clarifai-grpc {metadata.version('clarifai-grpc')})"
        )
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and the clarifai-grpc contract version, then exit.",
        ),
    ] = False,
) -> None:
    """scopegate: Clarifai-compatible identity and access server."""


# In the order --help lists them.
app.command("serve")(serve)
app.add_typer(db_app, name="db")
app.command("backup")(backup)
app.command("restore")(restore)
app.command("audit")(audit)
app.command("explain")(explain)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(apps_app, name="apps")
app.add_typer(models_app, name="models")
app.add_typer(orgs_app, name="orgs")
orgs_app.command("policy")(org_policy)
orgs_app.command("token-requests")(org_token_requests)
orgs_app.command("approve")(org_approve)
orgs_app.command("deny")(org_deny)
keys_app.command("usage")(with_database(keys_usage))
apps_app.command("usage")(with_database(apps_usage))


def _is(exc: BaseException, class_name: str) -> bool:
    # By name: depending on its version, Typer raises click's exceptions or its own copies.
    return any(cls.__name__ == class_name for cls in type(exc).__mro__)


def main() -> None:
    """Run the CLI; a usage error is one line on stderr and exit code 2, as any error is."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:
        if _is(exc, "NoArgsIsHelpError"):
            exc.show()  # type: ignore[attr-defined]
        elif _is(exc, "UsageError"):
            ctx = getattr(exc, "ctx", None)
            hint = f" Try '{ctx.command_path} --help'." if ctx else ""
            out.error_line(exc.format_message().rstrip(".") + "." + hint)  # type: ignore[attr-defined]
        elif _is(exc, "ClickException"):
            out.error_line(exc.format_message())  # type: ignore[attr-defined]
        elif _is(exc, "Abort"):
            out.error_line("aborted.")
            sys.exit(1)
        else:
            raise
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    sys.exit(code if isinstance(code, int) else 0)
