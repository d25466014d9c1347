"""Load generators, run in their own process so the server under test has a peer to saturate it.

    python -m benchmarks.loadgen http URL [--header 'name: value'] [--secrets FILE] ...
    python -m benchmarks.loadgen grpc ADDRESS METHOD [--secret S | --secrets FILE] ...

Each prints `START` when its warm-up is over and the measured window begins, `STOP` when
it ends, then one line
`BENCHJSON {...}` with the totals. `start_http()` / `start_grpc()` run them (or `wrk`, when
installed, for HTTP) as a subprocess and parse that line; the harness measures the server's
CPU time over the same window.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.common import BENCH_DIR, REPO_ROOT, CpuMeter

MARK_START = "START"
MARK_STOP = "STOP"
MARK_JSON = "BENCHJSON "
WRK_SCRIPT = BENCH_DIR / "wrk_script.lua"


@dataclass(slots=True)
class LoadResult:
    tool: str
    label: str  # what was sent in this window (the gRPC method, or "")
    requests: int  # completed in the measured window (any status)
    seconds: float
    non_ok: int  # HTTP non-2xx, or gRPC error / Clarifai status other than SUCCESS
    errors: int  # socket or RPC failures
    p50_us: float
    p99_us: float
    server_cpu_seconds: float | None = None
    server_wall_seconds: float = 0.0
    client_cpu_seconds: float | None = None
    # Another process's CPU per request over the window (Redis's in benchmark 16), when the
    # benchmark measures one.
    helper_cpu_us: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_cpu_us_per_request(self) -> float | None:
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return self.server_cpu_seconds / self.requests * 1e6

    @property
    def server_utilisation(self) -> float | None:
        if self.server_cpu_seconds is None or self.server_wall_seconds <= 0:
            return None
        return self.server_cpu_seconds / self.server_wall_seconds

    @property
    def client_utilisation(self) -> float | None:
        if self.client_cpu_seconds is None or self.server_wall_seconds <= 0:
            return None
        return self.client_cpu_seconds / self.server_wall_seconds


def wrk_path() -> str | None:
    if os.environ.get("BENCH_NO_WRK"):
        return None
    return shutil.which("wrk")


class LoadRun:
    """A load generator subprocess. Each measured window (between `START` and `STOP`, or
    the whole run for wrk) gets the server's and the generator's CPU time; `wait_all()`
    returns one `LoadResult` per window, `wait()` the last one."""

    def __init__(self, command: list[str], tool: str, server_pid: int | None, env=None) -> None:
        self.tool = tool
        self.server_pid = server_pid
        self._windows: list[tuple[CpuMeter | None, CpuMeter]] = []
        self._lines: list[str] = []
        self._stderr: list[str] = []
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
        )
        self._open: tuple[CpuMeter | None, CpuMeter] | None = None
        if tool == "wrk":  # no warm-up phase: the window starts now
            self._start_window()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def _start_window(self) -> None:
        server = CpuMeter(self.server_pid).start() if self.server_pid else None
        self._open = (server, CpuMeter(self.process.pid).start())

    def _stop_window(self) -> None:
        if self._open is not None:
            for meter in self._open:
                if meter is not None:
                    meter.stop()
            self._windows.append(self._open)
            self._open = None

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if len(self._stderr) < 200:
                self._stderr.append(line)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            if line.startswith(MARK_START):
                self._start_window()
            elif line == MARK_STOP or line.startswith(MARK_JSON):
                self._stop_window()
            self._lines.append(line)

    def wait(self, timeout: float) -> LoadResult:
        return self.wait_all(timeout)[-1]

    def wait_all(self, timeout: float) -> list[LoadResult]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"{self.tool} load generator did not finish in {timeout}s") from None
        self._reader.join(5)
        self._err_reader.join(5)
        found = [line for line in self._lines if line.startswith(MARK_JSON)]
        if self.process.returncode != 0 or not found or len(found) != len(self._windows):
            raise RuntimeError(
                f"{self.tool} load generator failed (exit {self.process.returncode}):\n"
                + "\n".join(self._lines[-20:])
                + "".join(self._stderr)[-2000:]
            )
        results = []
        for line, (server, client) in zip(found, self._windows, strict=True):
            data = json.loads(line[len(MARK_JSON) :])
            if "duration_us" in data:  # wrk
                data["seconds"] = data.pop("duration_us") / 1e6
                data["errors"] = data.pop("socket_errors")
                data["non_ok"] = data.pop("non2xx")
            results.append(
                LoadResult(
                    tool=self.tool,
                    label=data.get("label", ""),
                    requests=int(data["requests"]),
                    seconds=float(data["seconds"]),
                    non_ok=int(data["non_ok"]),
                    errors=int(data["errors"]),
                    p50_us=float(data["p50_us"]),
                    p99_us=float(data["p99_us"]),
                    server_cpu_seconds=server.cpu_seconds if server else None,
                    server_wall_seconds=server.wall_seconds if server else client.wall_seconds,
                    client_cpu_seconds=client.cpu_seconds,
                )
            )
        return results


def start_http(
    url: str,
    *,
    duration: float,
    connections: int,
    headers: dict[str, str] | None = None,
    secrets_file: Path | None = None,
    delay_ms: float = 0.0,
    server_pid: int | None = None,
    force_python: bool = False,
) -> LoadRun:
    """HTTP/1.1 keep-alive GETs of `url` from `connections` persistent connections."""
    headers = headers or {}
    wrk = None if force_python else wrk_path()
    if wrk:
        command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
        command += ["-s", str(WRK_SCRIPT)]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        env = {
            "BENCH_WRK_SECRETS": str(secrets_file) if secrets_file else "",
            "BENCH_WRK_DELAY_MS": str(int(delay_ms)),
        }
        return LoadRun([*command, url], "wrk", server_pid, env)
    command = [sys.executable, "-m", "benchmarks.loadgen", "http", url]
    command += ["--duration", str(duration), "--connections", str(connections)]
    command += ["--delay-ms", str(delay_ms)]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    if secrets_file:
        command += ["--secrets", str(secrets_file)]
    return LoadRun(command, "python-http", server_pid)


def start_http_keyed(
    server, path: str, secret: str, *, duration: float, connections: int
) -> LoadRun:
    """`start_http` of `path` on a started `ServerProcess`, sending `secret` as Clarifai
    clients do (`authorization: Key …`), with the server's CPU measured."""
    return start_http(
        f"{server.http_url}{path}",
        duration=duration,
        connections=connections,
        headers={"authorization": "Key " + secret},
        server_pid=server.process.pid,
    )


def start_grpc(
    address: str,
    methods: list[str],
    *,
    duration: float,
    concurrency: int,
    secret: str | None = None,
    secrets_file: Path | None = None,
    round_secrets_file: Path | None = None,
    expect: dict[str, int] | None = None,
    delay_ms: float = 0.0,
    server_pid: int | None = None,
) -> LoadRun:
    """One `grpc.aio` client process running one round per entry of `methods`
    (`Method` or `Method@user/app`)."""
    command = [sys.executable, "-m", "benchmarks.loadgen", "grpc", address, ",".join(methods)]
    command += ["--duration", str(duration), "--concurrency", str(concurrency)]
    command += ["--delay-ms", str(delay_ms)]
    if secret:
        command += ["--secret", secret]
    if secrets_file:
        command += ["--secrets", str(secrets_file)]
    if round_secrets_file:
        command += ["--round-secrets", str(round_secrets_file)]
    if expect:
        command += ["--expect", json.dumps(expect)]
    return LoadRun(command, "grpc-aio", server_pid)


# ------------------------------------------------------------------ generator processes


def _read_secrets(path: str | None) -> list[str]:
    if not path:
        return []
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def _summary(latencies_ns: list[int]) -> tuple[float, float]:
    from benchmarks.common import percentile

    ordered = sorted(latencies_ns)
    return percentile(ordered, 50) / 1000, percentile(ordered, 99) / 1000


def _http_main(args) -> None:
    import http.client

    parts = urlsplit(args.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    fixed = dict(h.split(":", 1) for h in args.header)
    fixed = {k.strip(): v.strip() for k, v in fixed.items()}
    secrets = _read_secrets(args.secrets)
    delay = args.delay_ms / 1000.0
    lock = threading.Lock()
    totals = {"requests": 0, "non_ok": 0, "errors": 0}
    latencies: list[int] = []
    phase = {"measure": False, "stop": False}

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        index = offset
        mine = {"requests": 0, "non_ok": 0, "errors": 0}
        lat: list[int] = []
        while not phase["stop"]:
            headers = dict(fixed)
            if secrets:
                index = (index + 1) % len(secrets)
                headers["authorization"] = "Key " + secrets[index]
            started = time.perf_counter_ns()
            try:
                conn.request("GET", path, headers=headers)
                reply = conn.getresponse()
                reply.read()
                status = reply.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                if phase["measure"]:
                    mine["errors"] += 1
                continue
            if phase["measure"]:
                mine["requests"] += 1
                mine["non_ok"] += not 200 <= status < 300
                if len(lat) < 200_000:
                    lat.append(time.perf_counter_ns() - started)
            if delay:
                time.sleep(delay)
        conn.close()
        with lock:
            for key, value in mine.items():
                totals[key] += value
            latencies.extend(lat)

    threads = [
        threading.Thread(target=worker, args=(i * 7919,), daemon=True)
        for i in range(args.connections)
    ]
    for thread in threads:
        thread.start()
    time.sleep(args.warmup)
    phase["measure"] = True
    print(MARK_START, flush=True)
    started = time.monotonic()
    time.sleep(args.duration)
    phase["measure"] = False
    seconds = time.monotonic() - started
    print(MARK_STOP, flush=True)
    phase["stop"] = True
    for thread in threads:
        thread.join(15)
    p50, p99 = _summary(latencies)
    print(MARK_JSON + json.dumps({**totals, "seconds": seconds, "p50_us": p50, "p99_us": p99}))


ENVOY_CHECK = "Check"
ENVOY_SERVICE = "envoy.service.auth.v3.Authorization"


def _envoy_check(app: str, secret: str | None):
    """A CheckRequest as Envoy sends it for `GET /v2/users/USER/apps/APP` with `secret`;
    answered OK with `status.code` 0 (pass `--expect '{"Check...": 0}'`)."""
    from envoy.service.auth.v3 import external_auth_pb2

    user_id, _, app_id = app.partition("/")
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.method, http.path = "GET", f"/v2/users/{user_id}/apps/{app_id}"
    http.headers.update(
        {
            ":method": "GET",
            ":path": http.path,
            ":authority": "api.example.com",
            "authorization": f"Key {secret}",
            "x-request-id": "bench",
        }
    )
    return request


def _check_response():
    from envoy.service.auth.v3 import external_auth_pb2

    return external_auth_pb2.CheckResponse


def _grpc_main(args) -> None:
    """Rounds, one per name in `args.methods`, on one channel that stays open throughout;
    calls keep flowing between rounds (the next method, unmeasured, for `--settle` s)."""
    import asyncio

    import grpc
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2

    kinds = {
        "MyScopes": (service_pb2.MyScopesRequest, service_pb2.MultiScopeResponse),
        "GetWorkflow": (service_pb2.GetWorkflowRequest, service_pb2.SingleWorkflowResponse),
        "GetApp": (service_pb2.GetAppRequest, service_pb2.SingleAppResponse),
        "GetStatusCode": (service_pb2.GetStatusCodeRequest, service_pb2.SingleStatusCodeResponse),
    }
    rounds = args.methods.split(",")
    # A round is `Method` or `Method@user/app`: that method naming that app.
    requests = {}
    paths = {}
    for name in set(rounds):
        method, _, app = name.partition("@")
        if method == ENVOY_CHECK:  # Envoy's question about GET .../apps/APP (GetApp)
            requests[name] = (method, _envoy_check(app, args.secret), _check_response())
            paths[name] = f"/{ENVOY_SERVICE}/Check"
            continue
        if method not in kinds:
            raise SystemExit(f"unsupported method {method}")
        paths[name] = f"/clarifai.api.V2/{method}"
        request_type, response_type = kinds[method]
        request = request_type()
        if method == "GetStatusCode":
            request.status_code_id = "10000"
        if method == "GetWorkflow":
            request.workflow_id = "general"
        if app:
            user_id, _, app_id = app.partition("/")
            request.user_app_id.CopyFrom(resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id))
        requests[name] = (method, request, response_type)
    secrets = _read_secrets(args.secrets)
    # Each round's own secret (JSON: round name -> secret), e.g. a collaborator's PAT.
    round_secrets = json.loads(Path(args.round_secrets).read_text()) if args.round_secrets else {}
    expected = {name: 10000 for name in requests}
    expected.update(json.loads(args.expect) if args.expect else {})

    async def run() -> None:
        async with grpc.aio.insecure_channel(args.address) as channel:
            # Generic multicallables: clarifai's V2Stub wants ClarifaiChannel's set-up.
            calls = {
                name: (
                    channel.unary_unary(
                        paths[name],
                        request_serializer=type(request).SerializeToString,
                        response_deserializer=response_type.FromString,
                    ),
                    request,
                    # Envoy's question carries the credential inside, not as metadata.
                    None if method == ENVOY_CHECK else round_secrets.get(name, args.secret),
                    expected[name],
                )
                for name, (method, request, response_type) in requests.items()
            }
            state = {"call": calls[rounds[0]], "measure": False, "stop": False}
            totals = {"requests": 0, "non_ok": 0, "errors": 0}
            latencies: list[int] = []

            async def worker(offset: int) -> None:
                index = offset
                while not state["stop"]:
                    call, request, secret, success = state["call"]
                    if secrets:
                        index = (index + 1) % len(secrets)
                        metadata = (("authorization", "Key " + secrets[index]),)
                    elif secret:
                        metadata = (("authorization", "Key " + secret),)
                    else:
                        metadata = ()
                    measured = state["measure"]
                    started = time.perf_counter_ns()
                    try:
                        response = await call(request, metadata=metadata, timeout=10)
                        failed, ok = False, response.status.code == success
                    except grpc.aio.AioRpcError:
                        failed, ok = True, False
                    if measured and state["measure"]:
                        totals["requests"] += not failed
                        totals["errors"] += failed
                        totals["non_ok"] += not ok
                        if len(latencies) < 200_000:
                            latencies.append(time.perf_counter_ns() - started)
                    if args.delay_ms:
                        await asyncio.sleep(args.delay_ms / 1000.0)

            tasks = [asyncio.create_task(worker(i * 7919)) for i in range(args.concurrency)]
            await asyncio.sleep(args.warmup)
            for name in rounds:
                state["call"] = calls[name]
                await asyncio.sleep(args.settle)
                for key in totals:
                    totals[key] = 0
                latencies.clear()
                state["measure"] = True
                print(f"{MARK_START} {name}", flush=True)
                started = time.monotonic()
                await asyncio.sleep(args.duration)
                state["measure"] = False
                seconds = time.monotonic() - started
                print(MARK_STOP, flush=True)
                p50, p99 = _summary(latencies)
                summary = {**totals, "seconds": seconds, "p50_us": p50, "p99_us": p99}
                print(MARK_JSON + json.dumps({**summary, "label": name}), flush=True)
            state["stop"] = True
            await asyncio.wait_for(asyncio.gather(*tasks), 20)

    asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    sub = parser.add_subparsers(dest="kind", required=True)
    http_parser = sub.add_parser("http")
    http_parser.add_argument("url")
    http_parser.add_argument("--header", action="append", default=[])
    grpc_parser = sub.add_parser("grpc")
    grpc_parser.add_argument("address")
    grpc_parser.add_argument("methods", help="one round per name: MyScopes,GetStatusCode,...")
    grpc_parser.add_argument("--settle", type=float, default=0.3)
    grpc_parser.add_argument("--secret")
    grpc_parser.add_argument("--round-secrets", help="JSON file: round name -> secret")
    grpc_parser.add_argument("--expect", help="JSON: round name -> expected status code")
    for each in (http_parser, grpc_parser):
        each.add_argument("--secrets", help="file of secrets, one a line, sent in turn")
        each.add_argument("--duration", type=float, default=3.0)
        each.add_argument("--warmup", type=float, default=0.5)
        each.add_argument("--delay-ms", type=float, default=0.0)
    http_parser.add_argument("--connections", type=int, default=8)
    grpc_parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 0.2), 60.0)  # bounded, whatever is asked
    if args.kind == "grpc" and len(args.methods.split(",")) > 200:
        parser.error("at most 200 rounds")
    if args.kind == "http":
        _http_main(args)
    else:
        _grpc_main(args)


if __name__ == "__main__":
    main()
