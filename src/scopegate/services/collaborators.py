"""Collaborators: grants of scopes on one app to another person. Each change is audited
and logged (`change_log`): it takes effect like a key revocation, at once on this process
and within the poll interval on others."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from scopegate.auth import tokens
from scopegate.auth.scopes import ScopeAlgebra
from scopegate.contract.status import does_not_exist, invalid_argument
from scopegate.services import change_log
from scopegate.services.apps import app_target
from scopegate.services.audit import Actor
from scopegate.services.keys import key_endpoints, key_scopes
from scopegate.store import collaborators
from scopegate.store.collaborators import CollaboratorRecord
from scopegate.store.records import AppRecord, UserRecord

if TYPE_CHECKING:
    from scopegate.contract.catalog import Catalog


class GrantNames:
    """Scope and endpoint names as a request gives them, resolved when a grant is written."""

    def __init__(self, algebra: ScopeAlgebra, catalog: Catalog) -> None:
        self._algebra = algebra
        self._catalog = catalog

    def resolve(
        self, scopes: Iterable[str], endpoints: Iterable[str]
    ) -> tuple[frozenset[str], frozenset[str]]:
        granted_scopes = key_scopes(self._algebra, scopes)
        granted_endpoints = key_endpoints(self._catalog, endpoints)
        if not granted_scopes and not granted_endpoints:
            raise invalid_argument("Grant the collaborator at least one scope or endpoint.")
        return granted_scopes, granted_endpoints


def _changed(conn: Connection, app: AppRecord, actor: Actor, action: str, who: str) -> None:
    change_log.record(conn, "app", app_target(app))
    actor.record(conn, action, f"app:{app_target(app)}", f"collaborator={who}")


def _granted(conn: Connection, app: AppRecord, user_id: str) -> CollaboratorRecord:
    record = collaborators.grant(conn, user_id, app.user_id, app.app_id)
    assert record is not None  # written in this transaction, which holds its row
    return record


def add_collaborator(
    conn: Connection,
    app: AppRecord,
    person: UserRecord,
    *,
    scopes: Iterable[str],
    endpoints: Iterable[str],
    names: GrantNames,
    actor: Actor,
) -> CollaboratorRecord:
    """Grant `person` the scopes and endpoints named on `app`."""
    if person.user_id == app.user_id:
        raise invalid_argument("The app's owner cannot be its collaborator.")
    if collaborators.grant(conn, person.user_id, app.user_id, app.app_id):
        raise invalid_argument(f"{person.user_id} already collaborates on this app.")
    granted_scopes, granted_endpoints = names.resolve(scopes, endpoints)
    try:
        collaborators.add(
            conn,
            public_id=tokens.new_public_id(),
            app_pk=app.pk,
            user_id=person.user_id,
            scopes=granted_scopes,
            endpoints=granted_endpoints,
        )
    except IntegrityError:
        raise invalid_argument(f"{person.user_id} already collaborates.") from None
    _changed(conn, app, actor, "collaborator.add", person.user_id)
    return _granted(conn, app, person.user_id)


def find_collaborator(conn: Connection, app: AppRecord, key: str) -> CollaboratorRecord:
    """A collaborator of `app` by collaborator id, user id or email."""
    record = collaborators.find(conn, app.pk, key) if key else None
    if record is None:
        raise does_not_exist(f"'{key}' is not a collaborator of this app.")
    return record


def patch_collaborator(
    conn: Connection,
    app: AppRecord,
    key: str,
    *,
    scopes: Iterable[str],
    endpoints: Iterable[str],
    names: GrantNames,
    actor: Actor,
) -> CollaboratorRecord:
    """Overwrite the grant of the collaborator `key` names."""
    record = find_collaborator(conn, app, key)
    granted_scopes, granted_endpoints = names.resolve(scopes, endpoints)
    if not collaborators.set_grant(
        conn, app.pk, record.user_id, granted_scopes, granted_endpoints
    ):  # removed by a concurrent request since it was found
        raise does_not_exist(f"'{key}' is not a collaborator of this app.")
    _changed(conn, app, actor, "collaborator.patch", record.user_id)
    return _granted(conn, app, record.user_id)


def remove_collaborator(conn: Connection, app: AppRecord, key: str, *, actor: Actor) -> None:
    """End the grant of the collaborator `key` names."""
    record = find_collaborator(conn, app, key)
    if not collaborators.remove(conn, app.pk, record.user_id):  # a concurrent removal won
        raise does_not_exist(f"'{key}' is not a collaborator of this app.")
    _changed(conn, app, actor, "collaborator.remove", record.user_id)
