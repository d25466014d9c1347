"""6. The garbage collector's share of a request: Python's defaults vs `scopegate.heap.settle`.

The server's ASGI app, built as `server.serve` builds it, driven in process by 256
concurrent requests (a collaborator's `MyScopes` on the owner's app over REST). Each request
yields to the event loop while its body is read and its answer written, so the requests are
in flight together, as under load on a real socket. Blocks alternate the two settings
(default: nothing frozen, young threshold 700; settled: start-up objects frozen, young
threshold 10,000), so drift hits both alike. Reported per request: process CPU time, time
inside collections (`gc.callbacks`), and the longest single collection.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time

from benchmarks.common import Result, log, open_services, sign_up, temp_dir

NAME = "6. garbage collector"
IN_FLIGHT = 256
DEFAULT_THRESHOLD = (700, 10, 10)


class _Collections:
    """Time spent in collections, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.total = 0.0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = time.perf_counter() - self._started
            self.total += took
            self.longest = max(self.longest, took)


async def _call(app, method: str, path: str, secret: str, body: dict | None = None) -> int:
    raw = json.dumps(body).encode() if body is not None else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Key {secret}".encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0

    async def receive():
        nonlocal sent
        await asyncio.sleep(0)  # a socket read: other requests run meanwhile
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await asyncio.sleep(0)  # a socket write

    await app(scope, receive, send)
    return status


def _build_app(services):
    from scopegate.portal import build_portal
    from scopegate.server.serve import build_dispatcher
    from scopegate.services.login import LoginService
    from scopegate.transports.rest.app import build_http_app

    login = LoginService(services.engine, services.hasher, session_seconds=3600)
    dispatcher = build_dispatcher(services)
    return build_http_app(dispatcher, services.catalog, login, build_portal(dispatcher, login))


async def _measure(app, path: str, secret: str, waves: int, blocks: int) -> dict[str, list]:
    from scopegate.server import heap

    async def wave() -> None:
        statuses = await asyncio.gather(
            *(_call(app, "GET", path, secret) for _ in range(IN_FLIGHT))
        )
        if any(s != 200 for s in statuses):
            raise RuntimeError(f"unexpected statuses: {sorted(set(statuses))}")

    for _ in range(5):
        await wave()
    collections = _Collections()
    gc.callbacks.append(collections)
    figures: dict[str, list] = {"default": [], "settled": []}
    try:
        for block in range(2 * blocks):
            setting = "default" if block % 2 == 0 else "settled"
            if setting == "default":
                gc.unfreeze()
                gc.set_threshold(*DEFAULT_THRESHOLD)
                gc.collect()
            else:
                heap.settle()
            collections.total = collections.longest = 0.0
            started = time.process_time()
            for _ in range(waves):
                await wave()
            cpu = time.process_time() - started
            requests = waves * IN_FLIGHT
            figures[setting].append(
                (cpu / requests * 1e6, collections.total / requests * 1e6, collections.longest)
            )
    finally:
        gc.callbacks.remove(collections)
        gc.unfreeze()
        gc.set_threshold(*DEFAULT_THRESHOLD)
    return figures


def run(options) -> tuple[list[Result], list[str]]:
    waves, blocks = (10, 2) if options.quick else (40, 6)
    with temp_dir("sg-bench-gc-") as data_dir:
        services = open_services(data_dir)
        owner, guest = sign_up(services, "owner"), sign_up(services, "guest")
        app = _build_app(services)

        async def main():
            for path, body in (
                ("/v2/users/me/apps", {"apps": [{"id": "private"}]}),
                (
                    "/v2/users/owner/apps/private/collaborators",
                    {"collaborators": [{"user": {"id": "guest"}, "scopes": ["All"]}]},
                ),
            ):
                status = await _call(app, "POST", path, owner, body)
                if status != 200:
                    raise RuntimeError(f"setting up {path}: HTTP {status}")
            log(f"{NAME}: {2 * blocks} blocks of {waves} x {IN_FLIGHT} requests in flight")
            return await _measure(
                app, "/v2/users/owner/apps/private/myscopes", guest, waves, blocks
            )

        figures = asyncio.run(main())
        services.engine.dispose()

    def mean(setting: str, index: int) -> float:
        values = [f[index] for f in figures[setting]]
        return sum(values) / len(values)

    results = []
    for label, index, unit in (
        ("process CPU per request", 0, "µs"),
        ("time in collections per request", 1, "µs"),
    ):
        results.append(
            Result(
                NAME,
                f"{label}: default / settled",
                f"{mean('default', index):.1f} / {mean('settled', index):.1f}",
                unit,
                note=f"mean of {blocks} blocks each",
            )
        )
    longest = {s: max(f[2] for f in figures[s]) * 1000 for s in figures}
    results.append(
        Result(
            NAME,
            "longest collection: default / settled",
            f"{longest['default']:.1f} / {longest['settled']:.1f}",
            "ms",
        )
    )
    details = [
        f"Blocks in the order run ({IN_FLIGHT} requests in flight, {waves} waves each):",
        "",
        "| block | setting | CPU µs/request | in collections µs/request | longest ms |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    order = [s for pair in zip(figures["default"], figures["settled"], strict=True) for s in pair]
    for i, (cpu, in_gc, longest_s) in enumerate(order):
        setting = "default" if i % 2 == 0 else "settled"
        details.append(
            f"| {i + 1} | {setting} | {cpu:.1f} | {in_gc:.1f} | {longest_s * 1000:.1f} |"
        )
    details.append("")
    return results, details
