"""Where a method's server time goes: the real server under cProfile, driven by the load
generators of benchmark 2, one method at a time.

    python -m benchmarks.profile_server [--transport rest|grpc] [--seconds 5] [--top 30]

For each of MyScopes (PAT) and GetStatusCode (NoAuth) it prints the functions with the
largest cumulative time per request, side by side, so the cost of authentication shows as
the difference. cProfile slows the server down ~2x and profiles the event-loop thread only;
read the figures as shares, not as absolute latencies.
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys

from benchmarks import loadgen
from benchmarks.common import log, temp_dir


def profiled_server(data_dir, profile_path):
    """`scopegate serve` under `python -m cProfile -o <file>`; written on graceful stop."""
    from tests.support.server_process import ServerProcess

    class ProfiledServer(ServerProcess):
        def start(self, timeout: float = 30.0):
            original = subprocess.Popen

            def popen(args, *rest, **kwargs):
                if args[:3] == [sys.executable, "-m", "scopegate"]:
                    args = [
                        sys.executable,
                        "-m",
                        "cProfile",
                        "-o",
                        str(profile_path),
                        "-m",
                        "scopegate",
                        *args[3:],
                    ]
                return original(args, *rest, **kwargs)

            subprocess.Popen = popen
            try:
                return super().start(timeout)
            finally:
                subprocess.Popen = original

    return ProfiledServer(data_dir=data_dir, database_url=None)


def profile(transport: str, method: str, seconds: float, data_dir):
    profile_path = data_dir / f"{method}.prof"
    server = profiled_server(data_dir / method, profile_path)
    server.start()
    try:
        pat = server.create_user("bench")
        headers = {"authorization": "Key " + pat}
        if transport == "rest":
            url = server.http_url + (
                "/v2/myscopes" if method == "MyScopes" else "/v2/status_codes/10000"
            )
            run = loadgen.start_http(url, duration=seconds, connections=256, headers=headers)
        else:
            run = loadgen.start_grpc(
                server.grpc_address, [method], duration=seconds, concurrency=16, secret=pat
            )
        result = run.wait(seconds + 60)
    finally:
        server.stop(timeout=60)
    stats = pstats.Stats(str(profile_path))
    return result, stats


def per_request(stats: pstats.Stats, requests: int) -> dict[str, tuple[float, float, int]]:
    """function -> (cumulative µs per request, own µs per request, calls per request)"""
    out = {}
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        short = filename.split("site-packages/")[-1].split("src/")[-1]
        key = f"{short}:{line}({name})"
        out[key] = (ct / requests * 1e6, tt / requests * 1e6, nc / requests)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_server")
    parser.add_argument("--transport", choices=["rest", "grpc"], default="grpc")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args(argv)
    args.seconds = min(max(args.seconds, 1.0), 30.0)
    tables = {}
    with temp_dir("sg-bench-profile-") as data_dir:
        for method in ("MyScopes", "GetStatusCode"):
            log(f"profiling {method} over {args.transport} for {args.seconds}s")
            result, stats = profile(args.transport, method, args.seconds, data_dir)
            # requests served while profiled: the measured window plus the warm-up
            served = sum(
                nc
                for (_f, _l, n), (_c, nc, *_r) in stats.stats.items()
                if n == "dispatch" and _f.endswith("dispatch.py")
            )
            tables[method] = (per_request(stats, max(1, served)), served, result)
    auth, noauth = tables["MyScopes"][0], tables["GetStatusCode"][0]
    for method, (_table, served, result) in tables.items():
        print(f"{method}: {served:,} requests dispatched, {result.rps:,.0f} req/s under profile")
    print()
    header = ("cum µs/req MyScopes", "GetStatusCode", "diff", "calls/req")
    print(f"{header[0]:>20} {header[1]:>14} {header[2]:>7} {header[3]:>9}  function")
    keys = sorted(
        set(auth) | set(noauth),
        key=lambda k: -abs(auth.get(k, (0, 0, 0))[0] - noauth.get(k, (0, 0, 0))[0]),
    )
    for key in keys[: args.top]:
        a = auth.get(key, (0.0, 0.0, 0.0))
        b = noauth.get(key, (0.0, 0.0, 0.0))
        print(f"{a[0]:20.1f} {b[0]:14.1f} {a[0] - b[0]:7.1f} {a[2]:9.2f}  {key}")


if __name__ == "__main__":
    main()
