"""Instructions per request, counted by valgrind's callgrind: a figure this noisy VM cannot
move, for telling a 2 % change from noise when timings vary by 20 %.

    python -m benchmarks.instructions [--waves 4]

Each request kind runs in its own process under `valgrind --tool=callgrind`: the server's
ASGI app built as `server.serve` builds it, driven in process with 256 requests in flight
(as benchmark 6), instrumented only while the measured waves run. Reported: instructions
per request of each kind and the ratio NoAuth / kind, which is the throughput ratio a
CPU-bound server would show if every instruction cost the same. They do not: the
authenticated path's extra code also costs cache misses, so the server's measured ratios
(benchmarks 2 and 5) come out lower than these. Needs valgrind; not part of the six.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import REPO_ROOT

KINDS = {
    "noauth": "/v2/status_codes/10000",
    "collaborator": "/v2/users/owner/apps/private/myscopes",
    "public": "/v2/users/owner/apps/public/workflows/general",
    # Issue 17's pair: the same method with the caller's own PAT and with an app key.
    "pat": "/v2/myscopes",
    "appkey": "/v2/myscopes",
}


def _measure_in_this_process(kind: str, waves: int) -> None:
    """Runs under callgrind: set up, warm up, then count `waves` x 256 requests."""
    from benchmarks.bench_gc import IN_FLIGHT, _build_app, _call
    from benchmarks.common import open_services, sign_up, temp_dir
    from scopegate.server import heap

    def instrument(on: bool) -> None:
        subprocess.run(
            ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
            capture_output=True,
            check=True,
        )

    with temp_dir("sg-bench-instr-") as data_dir:
        services = open_services(data_dir)
        users = {name: sign_up(services, name) for name in ("owner", "guest", "stranger")}
        app = _build_app(services)
        from scopegate.services.apps import create_app

        with services.engine.begin() as conn:
            _keyed, app_key = create_app(conn, services.hasher, "owner", "keyed")
        secret = {"public": users["stranger"], "pat": users["owner"], "appkey": app_key}.get(
            kind, users["guest"]
        )

        async def main() -> None:
            for path, body in (
                ("/v2/users/me/apps", {"apps": [{"id": "private"}]}),
                ("/v2/users/me/apps", {"apps": [{"id": "public", "visibility": {"gettable": 50}}]}),
                (
                    "/v2/users/owner/apps/private/collaborators",
                    {"collaborators": [{"user": {"id": "guest"}, "scopes": ["All"]}]},
                ),
            ):
                if await _call(app, "POST", path, users["owner"], body) != 200:
                    raise RuntimeError(f"setting up {path} failed")
            heap.settle()

            async def wave() -> None:
                await asyncio.gather(
                    *(_call(app, "GET", KINDS[kind], secret) for _ in range(IN_FLIGHT))
                )

            for _ in range(3):
                await wave()
            instrument(True)
            for _ in range(waves):
                await wave()
            instrument(False)

        asyncio.run(main())
        services.engine.dispose()
    print(f"REQUESTS {waves * IN_FLIGHT}")


def _count(kind: str, waves: int, out_dir: Path) -> float:
    log = out_dir / f"{kind}.log"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir / f'{kind}.out'}",
        f"--log-file={log}",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--run",
        kind,
        "--waves",
        str(waves),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    requests = int(done.stdout.split("REQUESTS ")[1].split()[0])
    collected = next(line for line in log.read_text().splitlines() if "Collected :" in line)
    return int(collected.rsplit(":", 1)[1].strip()) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--waves", type=int, default=4, help="waves of 256 requests per kind")
    parser.add_argument("--run", choices=sorted(KINDS), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.run:
        _measure_in_this_process(options.run, options.waves)
        return 0
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 1
    # Counts do not depend on what else runs, so the kinds run side by side.
    with (
        tempfile.TemporaryDirectory(prefix="sg-bench-callgrind-") as out,
        ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
    ):
        futures = {kind: pool.submit(_count, kind, options.waves, Path(out)) for kind in KINDS}
        counts = {kind: future.result() for kind, future in futures.items()}
    base = counts["noauth"]
    print("| request | instructions per request | NoAuth / this |")
    print("| --- | ---: | ---: |")
    for kind, per_request in counts.items():
        print(f"| {kind} | {per_request:,.0f} | {base / per_request:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
