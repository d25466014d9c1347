"""Shared helpers: result rows, percentiles, in-process services, the real server, CPU time."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"

# `tests.support.server_process` starts the real server; it lives beside `src/`, not in the package.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@dataclass(slots=True)
class Result:
    """One row of the results table."""

    benchmark: str
    metric: str
    value: float | int | str
    unit: str = ""
    target: str = ""
    passed: bool | None = None  # None: informational, no target
    note: str = ""

    def verdict(self) -> str:
        if self.passed is None:
            return ""
        return "ok" if self.passed else "MISS"

    def shown(self) -> str:
        value = self.value
        if isinstance(value, float):
            if abs(value) >= 100:
                return f"{value:,.0f}"
            if abs(value) >= 10:
                return f"{value:.1f}"
            return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]


def summarize_ns(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50, p90, p99, p99.9 and mean in microseconds."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {
        "n": n,
        "p50_us": percentile(ordered, 50) / 1000,
        "p90_us": percentile(ordered, 90) / 1000,
        "p99_us": percentile(ordered, 99) / 1000,
        "p999_us": percentile(ordered, 99.9) / 1000,
        "mean_us": sum(ordered) / n / 1000 if n else float("nan"),
    }


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def open_services(data_dir: Path):
    """Services as the server builds them (migrations run), on SQLite in `data_dir`."""
    from scopegate.server import config, runtime

    return runtime.open_services(config.resolve(data_dir, None))


def sign_up(services, user_id: str) -> str:
    """A user with its default PAT (scope `All`); returns the PAT."""
    from scopegate.services.users import sign_up

    with services.engine.begin() as conn:
        _user, pat = sign_up(conn, services.hasher, user_id, f"{user_id}@example.com", None)
    return pat


# ---------------------------------------------------------------------------- server


def start_server(data_dir: Path, env: dict[str, str] | None = None):
    from tests.support.server_process import ServerProcess

    return ServerProcess(data_dir=data_dir, database_url=None, extra_env=env or {}).start()


def stop_server(server) -> None:
    with contextlib.suppress(Exception):
        server.stop(timeout=20)


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all threads), from /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime


class CpuMeter:
    """CPU seconds a process spent between `start()` and `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._cpu0: float | None = None
        self._wall0 = 0.0
        self.cpu_seconds: float | None = None
        self.wall_seconds = 0.0

    def start(self) -> CpuMeter:
        self._cpu0 = process_cpu_seconds(self.pid)
        self._wall0 = time.monotonic()
        return self

    def stop(self) -> CpuMeter:
        cpu1 = process_cpu_seconds(self.pid)
        self.wall_seconds = time.monotonic() - self._wall0
        if cpu1 is not None and self._cpu0 is not None:
            self.cpu_seconds = cpu1 - self._cpu0
        return self

    @property
    def utilisation(self) -> float | None:
        """Cores busy on average (1.0 = one core saturated)."""
        if self.cpu_seconds is None or self.wall_seconds <= 0:
            return None
        return self.cpu_seconds / self.wall_seconds


def pinning_wanted() -> bool:
    """Whether a benchmark that can should give its servers a core of their own (see
    `pin_servers`): on unless `BENCH_NO_PIN` is set, and only with two cores or more."""
    return not os.environ.get("BENCH_NO_PIN") and len(os.sched_getaffinity(0)) >= 2


def _with_children(pids: Sequence[int]) -> list[int]:
    """The processes and their children (a one-port server's relay process, say)."""
    found = list(pids)
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as children:
                    found += [int(child) for child in children.read().split()]
    return found


@contextlib.contextmanager
def servers_pinned(pids: Sequence[int]) -> Iterator[str]:
    """Every thread of the server processes on the last core this process may use, and
    this process (so the load generators it starts meanwhile) on the others, until the
    block ends. A server that saturates its core then serves at the inverse of its CPU per
    request, whatever the load generators and the scheduler do: rounds that otherwise move
    by 10-30 % on two shared cores agree within about 1 %. Yields a line for the report."""
    mine = os.sched_getaffinity(0)
    cpus = sorted(mine)
    server_cpu, others = {cpus[-1]}, set(cpus[:-1])
    for pid in _with_children(pids):
        for tid in os.listdir(f"/proc/{pid}/task"):  # a thread made later inherits it
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), server_cpu)
    os.sched_setaffinity(0, others)
    try:
        yield (
            f"Servers pinned to CPU {cpus[-1]}, load generators to CPU "
            f"{', '.join(map(str, sorted(others)))} (`BENCH_NO_PIN=1`: the scheduler places them)."
        )
    finally:
        os.sched_setaffinity(0, mine)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
