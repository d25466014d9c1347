"""Assembling the shared services from settings: used by the server and the CLI alike."""

from __future__ import annotations

from scopegate.auth.scopes import ScopeAlgebra
from scopegate.auth.tokens import SecretHasher
from scopegate.context import Services
from scopegate.contract.catalog import load_catalog
from scopegate.runners.registry import RunnerPool
from scopegate.server.config import Settings, server_secret
from scopegate.server.seed import seed_clarifai_main
from scopegate.services.usage import UsageCounter
from scopegate.store.database import migrate, open_engine, require_current


def open_services(settings: Settings) -> Services:
    engine = open_engine(settings.database_url)
    # Either way a database newer than the scripts is refused (SchemaMismatch).
    if settings.migrate:
        migrate(engine)
    else:
        require_current(engine)
    seed_clarifai_main(engine)
    catalog = load_catalog()
    return Services(
        engine=engine,
        hasher=SecretHasher(server_secret(settings)),
        catalog=catalog,
        scopes=ScopeAlgebra({name: s.depends_on for name, s in catalog.scopes.items()}),
        media=settings.media,
        runners=RunnerPool(engine),
    )


def usage_counter(settings: Settings, services: Services) -> UsageCounter | None:
    """The dispatcher's usage observer, written with the last-used times; None when
    counting is off (SCOPEGATE_USAGE_COUNTING=0)."""
    if not settings.usage.counting:
        return None
    return UsageCounter(services.engine, settings.usage)
