"""`scopegate keys usage` and `scopegate apps usage`: what the usage routes answer, read
from the database (counts reach it within a running server's write interval). The CLI
speaks for the operator: an app's usage shows every credential."""

from __future__ import annotations

from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.common import Database, UserOption, option, require_app, require_user
from scopegate.cli.common import usage as usage_error
from scopegate.cli.option_groups import option_group
from scopegate.contract.status import ApiError
from scopegate.services import keys as key_services
from scopegate.services.usage_report import Document, Window, app_report, key_report, window

KeyArgument = Annotated[
    str, typer.Argument(help="The key's public id, or its secret.", show_default=False)
]
AppArgument = Annotated[str, typer.Argument(help="The app's id.", show_default=False)]
DaysOption = Annotated[int, option("--days", "How many days back, up to now (default 30).")]
GranularityOption = Annotated[
    str, option("--granularity", "'day' (default) or 'hour' (31 days at most).")
]


def _span(days: DaysOption = 30, granularity: GranularityOption = "day") -> Window:
    """The window --days and --granularity name, for both usage commands."""
    if days < 1:
        usage_error("--days must be at least 1.")
    try:
        return window({"granularity": granularity}, days=days)
    except ApiError as error:
        usage_error(error.details)


def _text(document: Document, what: str) -> list[out.Shown]:
    outcomes = sorted(document["outcomes"], key=lambda name: -document["outcomes"][name])
    shown: list[out.Shown] = [
        f"{what}: {document['total']} requests from {document['from']} to {document['to']}"
        + "".join(f", {name} {document['outcomes'][name]}" for name in outcomes),
        out.Rows(
            f"By {document['granularity']}",
            ("start", "total", *outcomes),
            [
                [entry["start"], str(entry["total"])]
                + [str(entry["outcomes"].get(name, 0)) for name in outcomes]
                for entry in document["series"]
            ],
            empty="No requests in this period.",
        ),
        out.Rows(
            "Methods",
            ("method", "total", "outcomes"),
            [[m["method"], str(m["total"]), _outcomes(m["outcomes"])] for m in document["methods"]],
            empty="",
        ),
    ]
    if "credentials" in document:
        shown.append(
            out.Rows(
                "Credentials",
                ("credential", "user", "total", "outcomes"),
                [
                    [
                        c["credential_id"] or "(none)",
                        c["user_id"],
                        str(c["total"]),
                        _outcomes(c["outcomes"]),
                    ]
                    for c in document["credentials"]
                ],
                no_wrap=("credential",),
                empty="",
            )
        )
    shown.append(
        out.Rows(
            "Client addresses",
            ("address", "requests"),
            [[a["address"], str(a["count"])] for a in document["addresses"]],
            empty="",
        )
    )
    return shown


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items()))


@option_group("span", _span)
def keys_usage(
    key: KeyArgument,
    user: UserOption,
    *,
    span: Window,
    db: Database,
) -> None:
    """A key's requests per day (or hour) by outcome, its methods and client addresses."""
    with db.connect() as (services, conn):
        require_user(conn, user)
        record = key_services.find_key(conn, services.hasher, user, key)
        document = {"key_id": record.public_id, **key_report(conn, record.public_id, span)}
    db.show(document, *_text(document, f"Key {record.public_id}"))


@option_group("span", _span)
def apps_usage(
    app: AppArgument,
    user: UserOption,
    *,
    span: Window,
    db: Database,
) -> None:
    """An app's requests per day (or hour) by outcome, by credential and method."""
    with db.connect() as (_, conn):
        require_user(conn, user)
        require_app(conn, user, app)
        report = app_report(conn, user, app, span, lambda row: row, lambda _row: True)
    document = {"user_id": user, "app_id": app, **report}
    db.show(document, *_text(document, f"App {user}/{app}"))
