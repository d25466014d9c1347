"""Operating the database (issue 17): `--version`, `db current | check | upgrade`,
`serve --no-migrate`, a database newer than the scripts, and SQLite backups taken while a
server is written to, restored into a new data dir and served again."""

from __future__ import annotations

import json
import threading
import uuid
from importlib import metadata
from pathlib import Path

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from sqlalchemy import text

from scopegate.store.database import open_engine, script_heads, sqlite_url
from tests.support.api import ok
from tests.support.cli import one_error_line
from tests.support.clients import Client, make_stub, new_id
from tests.support.server_process import ServerProcess, free_port, scopegate
from tests.support.servers import BACKENDS

FUTURE = "9999_from_a_newer_scopegate"


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path) -> list[str]:
    """The options naming a fresh, empty database: a SQLite data dir or a PostgreSQL one."""
    args = ["--data-dir", str(tmp_path / "data")]
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"life_{uuid.uuid4().hex[:10]}")
        args += ["--database-url", url]
    return args


def _url(args: list[str]) -> str:
    options = dict(zip(args[::2], args[1::2], strict=True))
    return options.get("--database-url") or sqlite_url(Path(options["--data-dir"]))


def _json(*args: str) -> dict:
    result = scopegate(*args, "--json")
    return json.loads(result.stdout)


def _insert_revision(args: list[str], revision: str) -> None:
    engine = open_engine(_url(args))
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": revision}
            )
    finally:
        engine.dispose()


def _serve(*args: str):
    ports = ["--http-port", str(free_port()), "--grpc-port", str(free_port())]
    return scopegate("serve", *ports, *args)


def test_version_names_the_package_and_the_contract():
    result = scopegate("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"scopegate {metadata.version('scopegate')} "
        f"(clarifai-grpc {metadata.version('clarifai-grpc')})"
    )


def test_db_commands_on_a_fresh_then_a_migrated_database(database):
    heads = sorted(script_heads())
    fresh = _json("db", "current", *database)
    assert fresh["state"] == "behind" and fresh["applied"] == [] and fresh["heads"] == heads
    assert set(fresh["pending"]) >= set(heads)

    line = one_error_line(scopegate("db", "check", *database), 1)
    assert "behind" in line and "scopegate db upgrade" in line

    upgraded = scopegate("db", "upgrade", *database, "--json")
    assert upgraded.returncode == 0, upgraded.stderr
    document = json.loads(upgraded.stdout)
    assert document["upgraded"] == fresh["pending"]
    assert document["state"] == "current" and document["applied"] == heads

    checked = scopegate("db", "check", *database)
    assert checked.returncode == 0, checked.stderr
    assert "current" in checked.stdout
    assert _json("db", "current", *database)["state"] == "current"
    again = scopegate("db", "upgrade", *database)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_database_newer_than_the_scripts_is_named_and_refused(database):
    assert scopegate("db", "upgrade", *database).returncode == 0
    _insert_revision(database, FUTURE)

    current = _json("db", "current", *database)
    assert current["state"] == "ahead" and current["unknown"] == [FUTURE]
    for command in (("db", "check"), ("db", "upgrade")):
        line = one_error_line(scopegate(*command, *database), 1)
        assert "newer than this scopegate" in line and FUTURE in line
    for extra in ((), ("--no-migrate",)):
        line = one_error_line(_serve(*database, *extra), 2)
        assert "not serving" in line and "newer" in line and FUTURE in line
    # Every other command opens the database the same way, and refuses the same way.
    line = one_error_line(scopegate("keys", "list", "--user", "nobody", *database), 1)
    assert "newer than this scopegate" in line


def test_serve_no_migrate_refuses_a_database_behind_then_serves_it_upgraded(tmp_path):
    data = ["--data-dir", str(tmp_path / "data")]
    line = one_error_line(_serve(*data, "--no-migrate"), 2)
    assert "behind" in line and "scopegate db upgrade" in line
    assert _json("db", "current", *data)["applied"] == []  # left as it was

    assert scopegate("db", "upgrade", *data).returncode == 0
    server = ServerProcess(tmp_path / "data", None, extra_args=["--no-migrate"]).start()
    try:
        pat = server.create_user(new_id())
        stub = make_stub(server, "grpc")
        ok(stub.MyScopes(service_pb2.MyScopesRequest(), metadata=Client.auth(pat)))
    finally:
        assert server.stop() == 0


def test_backup_and_restore_of_postgresql_point_to_its_own_tools(postgres_cluster, tmp_path):
    url = postgres_cluster.create_database(f"life_{uuid.uuid4().hex[:10]}")
    args = ["--data-dir", str(tmp_path / "data"), "--database-url", url]
    assert "pg_dump" in one_error_line(scopegate("backup", str(tmp_path / "b.db"), *args), 2)
    restored = scopegate("restore", str(tmp_path / "b.db"), *args)
    assert "pg_restore" in one_error_line(restored, 2)


class _KeyWriter(threading.Thread):
    """Creates PATs through the official gRPC client, one after another, until stopped;
    `acknowledged` holds each secret once PostKeys has answered SUCCESS."""

    def __init__(self, server: ServerProcess, pat: str) -> None:
        super().__init__(daemon=True)
        self.stub, self.pat = make_stub(server, "grpc"), pat
        self.acknowledged: list[str] = []
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                reply = self.stub.PostKeys(
                    service_pb2.PostKeysRequest(
                        user_app_id=resources_pb2.UserAppIDSet(user_id="me"),
                        keys=[resources_pb2.Key(type="personal_access_token", scopes=["All"])],
                    ),
                    metadata=Client.auth(self.pat),
                )
                ok(reply)
                with self.changed:
                    self.acknowledged.append(reply.keys[0].id)
                    self.changed.notify_all()
        except BaseException as exc:  # reported by the test
            self.error = exc
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, count: int) -> list[str]:
        """The acknowledged secrets once there are at least `count`."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.acknowledged) >= count or self.error, 60)
            assert self.error is None, self.error
            assert len(self.acknowledged) >= count
            return list(self.acknowledged)


def test_sqlite_backup_under_write_load_restores_every_acknowledged_key(tmp_path):
    source = ServerProcess(tmp_path / "source", None).start()
    target: ServerProcess | None = None
    try:
        user_pat = source.create_user(new_id())
        writer = _KeyWriter(source, user_pat)
        writer.start()
        before = writer.wait_for(5)  # acknowledged before the backup began
        backup_file = tmp_path / "backup" / "scopegate.backup"
        backup_file.parent.mkdir()
        made = scopegate("backup", str(backup_file), "--data-dir", str(source.data_dir))
        assert made.returncode == 0, made.stderr
        during = len(writer.wait_for(0))
        # Sent once the backup had ended (the writer waits for each answer before the next).
        after = writer.wait_for(during + 3)[during + 1 :]
        writer.stopping.set()
        writer.join(60)
        assert writer.error is None, writer.error
        assert (backup_file.parent / "scopegate.backup.key").stat().st_mode & 0o077 == 0

        # The backup is not overwritten by accident, and not restored over a served database.
        again = scopegate("backup", str(backup_file), "--data-dir", str(source.data_dir))
        assert "--force" in one_error_line(again, 1)
        busy = scopegate("restore", str(backup_file), "--force", "--data-dir", str(source.data_dir))
        assert "in use" in one_error_line(busy, 1)

        restored_dir = tmp_path / "restored"
        restored = scopegate("restore", str(backup_file), "--data-dir", str(restored_dir))
        assert restored.returncode == 0, restored.stderr
        target = ServerProcess(restored_dir, None).start()
        stub = make_stub(target, "grpc")

        def authenticates(secret: str) -> bool:
            reply = stub.MyScopes(service_pb2.MyScopesRequest(), metadata=Client.auth(secret))
            return reply.status.code == codes.SUCCESS

        assert authenticates(user_pat)
        assert all(authenticates(secret) for secret in before)
        # What was made after the backup ended cannot be in it.
        assert not any(authenticates(secret) for secret in after)

        # A served data dir is refused; a stopped one with a database needs --force.
        busy = scopegate("restore", str(backup_file), "--force", "--data-dir", str(restored_dir))
        assert "in use" in one_error_line(busy, 1)
        assert target.stop() == 0
        kept = scopegate("restore", str(backup_file), "--data-dir", str(restored_dir))
        assert "--force" in one_error_line(kept, 1)
        forced = scopegate("restore", str(backup_file), "--force", "--data-dir", str(restored_dir))
        assert forced.returncode == 0, forced.stderr
    finally:
        source.stop()
        if target is not None:
            target.stop()


def test_restore_keeps_a_different_server_secret_unless_forced(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    assert scopegate("db", "upgrade", "--data-dir", str(source)).returncode == 0
    (source / "server.key").write_text("ab" * 32)
    backup_file = tmp_path / "copy.db"
    assert scopegate("backup", str(backup_file), "--data-dir", str(source)).returncode == 0
    target.mkdir()
    (target / "server.key").write_text("cd" * 32)
    refused = scopegate("restore", str(backup_file), "--data-dir", str(target))
    assert "server.key" in one_error_line(refused, 1)
    assert not (target / "scopegate.db").exists()
    forced = scopegate("restore", str(backup_file), "--force", "--data-dir", str(target))
    assert forced.returncode == 0, forced.stderr
    assert (target / "server.key").read_text() == "ab" * 32
    assert _json("db", "check", "--data-dir", str(target))["state"] == "current"
