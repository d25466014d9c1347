"""`scopegate serve --workers N`: N serving processes on the same ports, under one parent.

The parent does what must happen once (migrations, the seed, the server secret), reserves
the ports, then starts N workers: each is `scopegate serve` again, with the same options,
told by `SCOPEGATE_WORKER` which ports to take. Every worker binds its own listeners with
SO_REUSEPORT, so the kernel spreads connections over them; each keeps its own caches, and
they agree through the change log as separate instances do (access/invalidation.py).

The parent restarts a worker that dies (with a back-off, so a crash loop does not spin),
forwards SIGTERM/SIGINT for the workers' graceful stop, and exits 0 when they are done.

Prometheus' multiprocess mode: the parent makes a fresh directory for the workers'
PROMETHEUS_MULTIPROC_DIR, tells the client library when a worker is gone, and removes the
directory at exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scopegate.server.config import Settings
from scopegate.transports.sockets import bind_tcp

WORKERS_ENV = "SCOPEGATE_WORKERS"
# Internal: set by the parent for its workers only ({"index": i, "grpc_port": ..., ...}).
WORKER_ENV = "SCOPEGATE_WORKER"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_WORKERS = 512
# How long workers get to finish in-flight requests after SIGTERM (their own grace period
# is serve.GRACE_SECONDS) before they are killed.
STOP_SECONDS = 20.0
# Restart back-off: doubles for each worker that dies within STABLE_SECONDS of its start.
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 30.0
# A worker exiting with this code met a configuration error: restarting will not help.
USAGE_EXIT = 2

Announce = Callable[[str], None]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_workers(value: str | int | None) -> int:
    """`--workers` / SCOPEGATE_WORKERS: a whole number from 1 to MAX_WORKERS, or `auto`
    (the cores this process may run on); ValueError with a message a person can act on."""
    raw = str(value if value is not None else "1").strip().lower()
    if raw == "auto":
        return usable_cores()
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(
            f"--workers (or {WORKERS_ENV}) must be a whole number from 1 to {MAX_WORKERS}, or "
            f"'auto' for one per usable core ({usable_cores()} here); got '{value}'"
        )
    return count


# ----------------------------------------------------------------------------- the worker


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What the parent tells a worker: its index and the ports it shares."""

    index: int
    parent_pid: int
    grpc_port: int
    http_port: int
    port: int | None


def worker_role() -> WorkerRole | None:
    """This process's role when the parent started it, else None."""
    raw = os.environ.get(WORKER_ENV)
    if not raw:
        return None
    return WorkerRole(**json.loads(raw))


def as_worker(settings: Settings, role: WorkerRole) -> Settings:
    """The settings a worker serves with: the ports the parent reserved (port 0 resolved),
    shared; no migrations (the parent ran them)."""
    _die_with_parent(role.parent_pid)
    return dataclasses.replace(
        settings,
        grpc_port=role.grpc_port,
        http_port=role.http_port,
        port=role.port,
        migrate=False,
        worker=role.index,
    )


def _die_with_parent(parent_pid: int) -> None:
    """A worker whose parent is killed outright (SIGKILL) stops too, gracefully."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


# ----------------------------------------------------------------------------- the parent


def prepare_database(settings: Settings) -> None:
    """What N workers must not do at once: migrate (or check) the schema, seed, and create
    the server secret file."""
    from scopegate.server.config import server_secret
    from scopegate.server.seed import seed_clarifai_main
    from scopegate.store.database import migrate, open_engine, require_current

    server_secret(settings)
    engine = open_engine(settings.database_url)
    try:
        if settings.migrate:
            migrate(engine)
        else:
            require_current(engine)
        seed_clarifai_main(engine)
    finally:
        engine.dispose()


def _reserve(host: str, port: int, what: str) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket holding `port` for the workers while one
    restarts; port 0 becomes a real one. The port is first bound without SO_REUSEPORT, so a
    port another server already listens on (even with SO_REUSEPORT) is refused, not shared."""
    refused = f"cannot listen for {what} on"
    with bind_tcp(host, port, refused) as probe:
        port = probe.getsockname()[1]
    return bind_tcp(host, port, refused, reuse_port=True)


@dataclass(slots=True)
class _Worker:
    index: int
    process: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0  # consecutive early deaths
    restart_at: float = 0.0


class Supervisor:
    """Starts `count` workers from `command` and keeps them running until a signal."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        command: Sequence[str],
        announce: Announce = print,
    ) -> None:
        self.settings = settings
        self.count = count
        self.command = list(command)
        self.announce = announce
        self._stop_signal: int | None = None
        self._metrics_dir = ""
        self._env: dict[str, str] = {}

    def run(self) -> int:
        settings = self.settings
        prepare_database(settings)
        if settings.port is not None:
            reserved = [_reserve(settings.host, settings.port, "gRPC and HTTP")]
            ports = {"grpc_port": 0, "http_port": 0, "port": reserved[0].getsockname()[1]}
        else:
            reserved = [_reserve(settings.host, settings.grpc_port, "gRPC")]
            try:
                reserved.append(_reserve(settings.host, settings.http_port, "HTTP"))
            except OSError:
                reserved[0].close()
                raise
            ports = {
                "grpc_port": reserved[0].getsockname()[1],
                "http_port": reserved[1].getsockname()[1],
                "port": None,
            }
        self._metrics_dir = tempfile.mkdtemp(prefix="scopegate-metrics-")
        self._env = {**os.environ, METRICS_DIR_ENV: self._metrics_dir}
        role = {"parent_pid": os.getpid(), **ports}
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        workers = [_Worker(i) for i in range(self.count)]
        try:
            for worker in workers:
                self._start(worker, role)
            self._announce_start(ports)
            code = self._supervise(workers, role)
            self._stop_all(workers)
            return code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in workers:  # only after an error of our own: kill what is left
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()
            for sock in reserved:
                sock.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _on_signal(self, signum: int, _frame) -> None:
        self._stop_signal = signum

    def _start(self, worker: _Worker, role: dict) -> None:
        env = {**self._env, WORKER_ENV: json.dumps({"index": worker.index, **role})}
        worker.process = subprocess.Popen(self.command, env=env)
        worker.started = time.monotonic()

    def _supervise(self, workers: list[_Worker], role: dict) -> int:
        while self._stop_signal is None:
            now = time.monotonic()
            for worker in workers:
                process = worker.process
                if process is None:
                    if now >= worker.restart_at:
                        self._start(worker, role)
                    continue
                code = process.poll()
                if code is None:
                    continue
                self._mark_dead(process.pid)
                worker.process = None
                if code == USAGE_EXIT:
                    self.announce(
                        f"scopegate: worker {worker.index} (pid {process.pid}) refused to "
                        "start (exit 2); stopping"
                    )
                    return USAGE_EXIT
                lived = now - worker.started
                worker.failures = 0 if lived >= STABLE_SECONDS else worker.failures + 1
                delay = restart_delay(worker.failures)
                worker.restart_at = now + delay
                self.announce(
                    f"scopegate: worker {worker.index} (pid {process.pid}) exited "
                    f"({_exit_reason(code)}); restarting it in {delay:g}s"
                )
            time.sleep(0.05)
        return 0

    def _stop_all(self, workers: list[_Worker]) -> None:
        self.announce("scopegate: shutting down, finishing in-flight requests")
        live = [w.process for w in workers if w.process is not None and w.process.poll() is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in live:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.announce(f"scopegate: worker pid {process.pid} did not stop; killing it")
                process.kill()
                process.wait()
            self._mark_dead(process.pid)
        self.announce("scopegate: stopped")

    def _mark_dead(self, pid: int) -> None:
        """The multiprocess metrics of a gone worker: its live gauges no longer count."""
        try:
            from prometheus_client import multiprocess
        except ImportError:  # metrics not installed: nothing to tidy
            return
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(pid, self._metrics_dir)

    def _announce_start(self, ports: dict) -> None:
        s, n = self.settings, self.count
        scheme = "https" if s.tls else "http"
        if ports["port"] is not None:
            self.announce(
                f"scopegate: gRPC and {scheme.upper()} listening on one port, "
                f"{scheme}://{s.host}:{ports['port']} ({n} workers)"
            )
        else:
            tls = " (TLS)" if s.tls else ""
            self.announce(f"scopegate: gRPC listening on {s.host}:{ports['grpc_port']}{tls}")
            self.announce(
                f"scopegate: {scheme.upper()} listening on "
                f"{scheme}://{s.host}:{ports['http_port']} ({n} workers)"
            )


def restart_delay(failures: int) -> float:
    """How long a dead worker waits for its restart, after `failures` early deaths in a row:
    none after a worker that ran a while, then doubling up to MAX_BACKOFF_SECONDS."""
    if failures <= 0:
        return 0.0
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0**failures)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
