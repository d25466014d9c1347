"""What every command shares: the database options, one way to open the database and run a
command's work in it, and the checks that name a missing user or app."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from scopegate.cli import output as out
from scopegate.contract.status import ApiError, does_not_exist
from scopegate.server.config import Settings, resolve
from scopegate.store import apps, users
from scopegate.store.records import AppRecord

if TYPE_CHECKING:
    from scopegate.context import Services


def env_option(flag: str, **settings: Any) -> Any:
    """An option the environment can set too, by the variable named after its flag:
    `--log-format` by SCOPEGATE_LOG_FORMAT."""
    envvar = "SCOPEGATE_" + flag.removeprefix("--").replace("-", "_").upper()
    return typer.Option(flag, envvar=envvar, **settings)


DataDir = Annotated[
    Path | None,
    env_option("--data-dir", help="Directory for the SQLite database and the server secret."),
]
DatabaseUrl = Annotated[
    str | None,
    env_option("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db."),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def option(flag: str, text: str, **settings: Any) -> Any:
    """An option whose --help shows no default: most of ours have none worth showing."""
    return typer.Option(flag, help=text, show_default=False, **settings)


UserOption = Annotated[str, option("--user", "The user the credentials belong to.")]


def usage(message: str) -> NoReturn:
    """A usage error: one line on stderr, exit code 2."""
    out.fail(message, 2)


def settings(data_dir: Path | None, database_url: str | None, **options: Any) -> Settings:
    try:
        return resolve(data_dir, database_url, **options)
    except ValueError as exc:
        # One line, never read as markup: messages name files, whose paths may hold brackets.
        usage(str(exc))


@dataclass(frozen=True)
class Database:
    """A command's --data-dir, --database-url and --json: where its work runs, how it answers."""

    data_dir: Path | None
    database_url: str | None
    as_json: bool

    @contextmanager
    def services(self) -> Iterator[Services]:
        """The services for one command; an ApiError or database error becomes one stderr
        line and exit code 1."""
        # Deferred: composing the services loads the access engine, which --help never needs.
        from scopegate.server.runtime import open_services

        config = settings(self.data_dir, self.database_url)
        try:
            services = open_services(config)
        except (OSError, ValueError, SQLAlchemyError) as exc:
            out.fail(f"cannot open the database: {_first_line(exc)}")
        try:
            yield services
        except ApiError as exc:
            out.fail(exc.details or exc.description)
        except SQLAlchemyError as exc:
            out.fail(f"database error: {_first_line(exc)}")
        finally:
            services.engine.dispose()

    @contextmanager
    def engine(self) -> Iterator[tuple[Settings, Engine]]:
        """The settings and an engine on the database, as it is: not migrated, no services
        (for the commands that inspect or copy the database itself); errors as services'."""
        from scopegate.store.database import open_engine

        config = settings(self.data_dir, self.database_url)
        try:
            engine = open_engine(config.database_url)
        except (ValueError, SQLAlchemyError) as exc:
            out.fail(f"cannot open the database: {_first_line(exc)}")
        try:
            yield config, engine
        except SQLAlchemyError as exc:
            out.fail(f"database error: {_first_line(exc)}")
        finally:
            engine.dispose()

    @contextmanager
    def connect(self) -> Iterator[tuple[Services, Connection]]:
        """The services and a connection for reading."""
        with self.services() as services, services.engine.connect() as conn:
            yield services, conn

    @contextmanager
    def begin(self) -> Iterator[tuple[Services, Connection]]:
        """The services and one transaction: the command's changes commit together or not at
        all (and reach running servers through the change log)."""
        with self.services() as services, services.engine.begin() as conn:
            yield services, conn

    def show(self, document: object, *text: out.Shown) -> None:
        """The command's answer: `document` as JSON with --json, else `text` for people."""
        out.show(self.as_json, document, *text)


def with_database(func: Callable[..., None]) -> Callable[..., None]:
    """Give a command the options --data-dir, --database-url and --json (last, as every
    command lists them); the command receives them as its keyword argument `db`."""
    signature = inspect.signature(func, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "db"]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, kind, default in (
            ("data_dir", DataDir, None),
            ("database_url", DatabaseUrl, None),
            ("as_json", JsonOutput, False),
        )
    ]

    @functools.wraps(func)
    def command(
        *args: Any, data_dir: Path | None, database_url: str | None, as_json: bool, **kwargs: Any
    ) -> None:
        func(*args, db=Database(data_dir, database_url, as_json), **kwargs)

    # Typer reads the options from the signature and the annotations.
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + shared
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return command


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def names(values: list[str] | None) -> list[str]:
    """Repeated options that may also be comma-separated, as one list."""
    return [part.strip() for value in values or () for part in value.split(",")]


def require_user(conn: Connection, user_id: str) -> None:
    if users.get(conn, user_id) is None:
        raise does_not_exist(f"No user '{user_id}'.")


def require_app(conn: Connection, user_id: str, app_id: str) -> AppRecord:
    found = apps.get(conn, user_id, app_id)
    if found is None:
        raise does_not_exist(f"User '{user_id}' has no app '{app_id}'.")
    return found
