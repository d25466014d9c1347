"""Starting the real `scopegate serve` as a subprocess on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.tls import Certificate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scopegate(*args: str, env: dict | None = None, input: str | None = None):
    """Run the CLI as users do: `python -m scopegate ...`."""
    return subprocess.run(
        [sys.executable, "-m", "scopegate", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=input,
        timeout=60,
    )


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str | None
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)  # more `scopegate serve` options
    # With a certificate, `scopegate serve --tls-cert --tls-key`: TLS on both ports, and the
    # addresses below name `localhost`, which the test certificates are made for.
    tls: Certificate | None = None
    # Give the certificate through SCOPEGATE_TLS_CERT/_KEY instead of the options.
    tls_from_env: bool = False
    # `scopegate serve --port`: gRPC and HTTP on one port (http_port; grpc_port is made the same).
    one_port: bool = False
    _engine_and_hasher: tuple | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return "localhost" if self.tls else "127.0.0.1"

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.http_port}"

    def tls_args(self) -> list[str]:
        if self.tls is None or self.tls_from_env:
            return []
        return ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]

    def db_args(self) -> list[str]:
        if self.database_url:
            return ["--database-url", self.database_url, "--data-dir", str(self.data_dir)]
        return ["--data-dir", str(self.data_dir)]

    def port_args(self) -> list[str]:
        if self.one_port:
            self.grpc_port = self.http_port  # grpc_address and http_url name the one port
            return ["--port", str(self.http_port)]
        return ["--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port)]

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{self.http_port}.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scopegate",
                "serve",
                *self.port_args(),
                *self.db_args(),
                *self.tls_args(),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env()},
        )
        context = self.tls.client_context() if self.tls else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                url = f"{self.http_url}/healthz"
                with urllib.request.urlopen(url, timeout=1, context=context) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def env(self) -> dict[str, str]:
        # Both --data-dir and --database-url: the URL names the database, the dir the secret.
        env = dict(self.extra_env)
        if self.tls and self.tls_from_env:
            env["SCOPEGATE_TLS_CERT"] = str(self.tls.cert)
            env["SCOPEGATE_TLS_KEY"] = str(self.tls.key)
        return env

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        if self._engine_and_hasher is not None:
            self._engine_and_hasher[0].dispose()
            self._engine_and_hasher = None
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def cli(self, *args: str, input: str | None = None):
        return scopegate(*args, *self.db_args(), input=input)

    def create_user(
        self, user_id: str, email: str | None = None, password: str | None = None
    ) -> str:
        """A new user on the server's database; returns its default PAT.

        Signed up by the code behind `scopegate users create` (services.users.sign_up), run here
        rather than in a CLI process per user, which costs about a second of start-up each;
        tests/test_cli.py runs the command itself."""
        from scopegate.auth.passwords import hash_password
        from scopegate.services.users import sign_up

        engine, hasher = self._accounts()
        password_hash = hash_password(password) if password else None
        with engine.begin() as conn:
            _, pat = sign_up(
                conn, hasher, user_id, email or f"{user_id}@example.com", password_hash
            )
        return pat

    def _accounts(self):
        """(engine, secret hasher) on the server's database and server secret."""
        if self._engine_and_hasher is None:
            from scopegate.auth.tokens import SecretHasher
            from scopegate.server import config
            from scopegate.store.database import open_engine

            settings = config.resolve(self.data_dir, self.database_url)
            key = config.server_secret(settings)  # as the server reads it: env, else data dir
            self._engine_and_hasher = (open_engine(settings.database_url), SecretHasher(key))
        return self._engine_and_hasher
