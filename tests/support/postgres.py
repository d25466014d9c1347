"""A throwaway PostgreSQL cluster for a test run.

    reason = available()          # None when a cluster can be started here, else why not
    with PostgresCluster() as pg:
        url = pg.create_database("sg_x")   # postgresql+psycopg://postgres@127.0.0.1:PORT/sg_x

The cluster lives in a fresh temporary directory, listens only on 127.0.0.1 (plus a unix socket
inside that directory), trusts every local connection, and runs with durability turned off for
speed. Leaving the context manager stops it and removes the directory.

initdb and pg_ctl refuse to run as root: as root the cluster belongs to the `postgres` system
user (which Debian's postgresql package creates) and the tools run through `runuser` (or `su`).
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = [
    "PostgresCluster",
    "PostgresError",
    "available",
    "find_bindir",
]

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
TOOLS = ("initdb", "pg_ctl", "postgres")
SERVICE_USER = "postgres"
HOST = "127.0.0.1"
DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SPEED_OPTIONS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresError(RuntimeError):
    """The cluster could not be set up, started or used."""


def _is_root() -> bool:
    return os.geteuid() == 0


def _version_key(bindir: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", Path(bindir).parent.name)) or (0,)


def _has_tools(bindir: str | Path) -> bool:
    return all(os.access(os.path.join(bindir, tool), os.X_OK) for tool in TOOLS)


def find_bindir() -> Path | None:
    """The directory with initdb, pg_ctl and postgres: from PATH, else the highest
    /usr/lib/postgresql/<version>/bin. None when there is none."""
    initdb = shutil.which("initdb")
    if initdb:
        for candidate in (Path(initdb).parent, Path(initdb).resolve().parent):
            if _has_tools(candidate):
                return candidate
    for bindir in sorted(glob.glob(PG_BIN_GLOB), key=_version_key, reverse=True):
        if _has_tools(bindir):
            return Path(bindir)
    return None


def _service_account() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None


def available() -> str | None:
    """None when PostgresCluster can start here; otherwise a reason fit for pytest.skip."""
    if find_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH "
            f"or {PG_BIN_GLOB}; install the 'postgresql' package"
        )
    if importlib.util.find_spec("psycopg") is None:
        return "the psycopg package (v3) is not installed"
    if _is_root():
        if _service_account() is None:
            return (
                f"running as root, where initdb refuses to run, and there is no "
                f"'{SERVICE_USER}' system user to run it as"
            )
        if not (shutil.which("runuser") or shutil.which("su")):
            return f"running as root and neither runuser nor su is there to become '{SERVICE_USER}'"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _world_searchable(path: Path) -> bool:
    """Whether every directory from / down to path can be entered by any user."""
    for part in (path, *path.parents):
        try:
            if not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _temp_parent() -> str | None:
    """Where to make the cluster's directory: the usual temp dir, unless the postgres user
    could not reach it (running as root with TMPDIR in root's home, say)."""
    if not _is_root():
        return None
    default = Path(tempfile.gettempdir())
    if _world_searchable(default):
        return None
    return "/tmp"


class PostgresCluster:
    """A private PostgreSQL server, started by `start()` or `with`, gone after `stop()`."""

    def __init__(self, *, user: str = "postgres", start_timeout: float = 30.0) -> None:
        self.user = user
        self.host = HOST
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._bindir: Path | None = None
        self._running = False

    # -- paths ---------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base() / "socket"

    @property
    def log_path(self) -> Path:
        return self._base() / "server.log"

    def _base(self) -> Path:
        if self.base_dir is None:
            raise PostgresError("the cluster has not been started")
        return self.base_dir

    def _tool(self, name: str) -> str:
        assert self._bindir is not None
        return str(self._bindir / name)

    # -- running the server tools ----------------------------------------------------------

    def _run(self, cmd: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a server tool: as the postgres user when we are root, else as ourselves."""
        if _is_root():
            runuser = shutil.which("runuser")
            if runuser:
                cmd = [runuser, "-u", SERVICE_USER, "--", *cmd]
            else:
                su = shutil.which("su") or "su"
                cmd = [su, "-s", "/bin/sh", SERVICE_USER, "-c", shlex.join(cmd)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            return subprocess.run(
                cmd,
                check=False,
                cwd=self._base(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(
                f"{Path(cmd[0]).name} timed out after {timeout:.0f}s: {shlex.join(cmd)}"
                f"{self._log_tail()}"
            ) from exc

    def server_log(self) -> str:
        """The server's log so far ('' when there is none)."""
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, PostgresError):
            return ""

    def _log_tail(self, lines: int = 60) -> str:
        text = self.server_log().rstrip()
        if not text:
            return ""
        return "\n--- server log ---\n" + "\n".join(text.splitlines()[-lines:])

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        if self._running:
            return self
        reason = available()
        if reason:
            raise PostgresError(f"PostgreSQL unavailable: {reason}")
        self._bindir = find_bindir()
        self.base_dir = Path(tempfile.mkdtemp(prefix="scopegate-pg-", dir=_temp_parent()))
        atexit.register(self.stop)
        try:
            self.socket_dir.mkdir(mode=0o700)
            if _is_root():
                account = _service_account()
                assert account is not None
                for path in (self.base_dir, self.socket_dir):
                    os.chown(path, account.pw_uid, account.pw_gid)
            self._initdb()
            self._start_server()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        proc = self._run(
            [
                self._tool("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-N",  # no fsync of the new files
            ],
            timeout=120,
        )
        if proc.returncode != 0:
            raise PostgresError(f"initdb failed (exit {proc.returncode}):\n{proc.stdout}")

    def _start_server(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            options = [
                "-c",
                f"listen_addresses={HOST}",
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
            ]
            for setting in SPEED_OPTIONS:
                options += ["-c", setting]
            proc = self._run(
                [
                    self._tool("pg_ctl"),
                    "start",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(max(1, round(self.start_timeout))),
                    "-o",
                    shlex.join(options),
                ],
                timeout=self.start_timeout + 30,
            )
            if proc.returncode == 0:
                self._running = True
                return
            log = self.server_log()
            port_taken = "could not bind" in log or "already in use" in log
            if port_taken and attempt < attempts:
                continue  # lost the race for the port: try another one
            raise PostgresError(
                f"pg_ctl start failed (exit {proc.returncode}) on port {self.port}:\n"
                f"{proc.stdout.rstrip()}{self._log_tail()}"
            )

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with psycopg.connect(self._conninfo("postgres"), connect_timeout=5) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise PostgresError(
                        f"PostgreSQL on {self.host}:{self.port} did not accept connections "
                        f"within {self.start_timeout:.0f}s: {exc}{self._log_tail()}"
                    ) from exc
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call more than once."""
        atexit.unregister(self.stop)
        if self._running:
            self._running = False
            stopped = False
            for mode in ("fast", "immediate"):
                proc = self._run(
                    [self._tool("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w"],
                    timeout=60,
                )
                if proc.returncode == 0:
                    stopped = True
                    break
            if not stopped:
                self._kill_postmaster()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 9)
        except (OSError, ValueError, IndexError):
            pass

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- using it --------------------------------------------------------------------------

    def _conninfo(self, dbname: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of a database in this cluster."""
        if not self._running:
            raise PostgresError("the cluster is not running")
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def _admin_execute(self, statement: object) -> None:
        import psycopg

        if not self._running:
            raise PostgresError("the cluster is not running")
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    @staticmethod
    def _check_name(name: str) -> None:
        if not DB_NAME.fullmatch(name) or len(name.encode()) > 63:
            raise ValueError(f"bad database name {name!r}: use [A-Za-z_][A-Za-z0-9_]*, <= 63")

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        from psycopg import sql

        self._check_name(name)
        self._admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still in it."""
        from psycopg import sql

        self._check_name(name)
        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
