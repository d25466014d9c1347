"""A test upstream: a small grpc.aio clarifai.api.V2 server on a loopback port, run on an
event loop of its own in a thread, recording every call it receives (metadata and
requests) so that tests can say what arrived and what never did.

It answers:
- ListWorkflows (unary): one workflow per call, its id `wf-<app_id>`; with `per_page` 13 an
  in-band WORKFLOW_INVALID_REQUEST status (a failure the gate must pass on unchanged);
- PostModelOutputs (unary): one output whose id says it came from here;
- every other unary method: an empty answer with a SUCCESS status;
- every server-streaming method: `stream_answers` messages (GenerateModelOutputs and the
  others), each status description `upstream <method> <n>`;
- every bidirectional method: one answer per request message, in order, echoing the
  message's serialized size in its status details (StreamModelOutputs and the others).
`delay` (seconds) holds every answer back: slow upstream, deadlines, cancellation;
`payload_bytes` pads streamed answers (flow control).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from scopegate.contract.catalog import SERVICE_NAME, load_catalog


@dataclass
class Received:
    method: str
    metadata: list[tuple[str, str]]
    requests: list = field(default_factory=list)  # decoded request messages, in order
    cancelled: bool = False  # ended before its handler was done: cancelled by the caller
    completed: bool = False  # the handler answered all it had to
    sent: int = 0  # answers the upstream has handed to its transport
    time_remaining: float | None = None  # the deadline the call arrived with

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.metadata if k == name]
        assert len(values) <= 1, (name, values)
        return values[0] if values else None


class TestUpstream:
    __test__ = False  # not a test class for pytest

    def __init__(self, *, record: bool = True, tls=None) -> None:
        self.record = record  # off for benchmarks: a list growing by every call
        self.tls = tls  # a tests.support.tls.Certificate: serve TLS only
        self.calls: list[Received] = []
        self.delay = 0.0
        self.stream_answers = 3
        self.payload_bytes = 0  # padding in each streamed answer's status details
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TestUpstream:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
        self.delay = 0.0
        self.stream_answers = 3
        self.payload_bytes = 0

    def received(self, method: str | None = None) -> list[Received]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError("the upstream never saw it")

    # ------------------------------------------------------------------------ serving

    async def _start(self, port: int = 0) -> int:
        server = grpc.aio.server()
        catalog = load_catalog()
        handlers = {}
        for name, spec in catalog.methods.items():
            decode, encode = spec.input_type.FromString, spec.output_type.SerializeToString
            if spec.client_streaming:
                handlers[name] = grpc.stream_stream_rpc_method_handler(
                    self._bidi(spec), decode, encode
                )
            elif spec.server_streaming:
                handlers[name] = grpc.unary_stream_rpc_method_handler(
                    self._server_stream(spec), decode, encode
                )
            else:  # every unary method: a call that should never arrive is recorded too
                handlers[name] = grpc.unary_unary_rpc_method_handler(
                    self._unary(spec), decode, encode
                )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
        )
        if self.tls is None:
            port = server.add_insecure_port(f"127.0.0.1:{port}")
        else:
            pair = (self.tls.key.read_bytes(), self.tls.cert.read_bytes())
            credentials = grpc.ssl_server_credentials([pair])
            port = server.add_secure_port(f"127.0.0.1:{port}", credentials)
        await server.start()
        self._server = server
        return port

    def _record(self, name: str, context) -> Received:
        metadata = [(k, v) for k, v in (context.invocation_metadata() or ())]
        received = Received(name, metadata, time_remaining=context.time_remaining())
        # Cancelled by the caller: seen here even where the handler is not told (a write
        # to a cancelled stream fails inside grpc).
        context.add_done_callback(lambda done: _mark_cancelled(received, done))
        if self.record:
            with self._lock:
                self.calls.append(received)
        return received

    async def _hold(self, received: Received) -> None:
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            received.cancelled = True
            raise

    def _unary(self, spec):
        async def handle(request, context):
            received = self._record(spec.name, context)
            received.requests.append(request)
            await self._hold(received)
            response = spec.output_type()
            if spec.name == "ListWorkflows":
                if request.per_page == 13:
                    response.status.code = codes.WORKFLOW_INVALID_REQUEST
                    response.status.description = "Upstream refused"
                    response.status.details = "per_page 13 is unlucky"
                    response.status.req_id = "upstream-req"
                    received.completed = True
                    return response
                response.workflows.append(
                    resources_pb2.Workflow(
                        id=f"wf-{request.user_app_id.app_id}",
                        user_id=request.user_app_id.user_id,
                        app_id=request.user_app_id.app_id,
                    )
                )
            elif spec.name == "PostModelOutputs":
                response.outputs.append(resources_pb2.Output(id="from-upstream"))
            response.status.code = codes.SUCCESS
            response.status.description = f"upstream {spec.name}"
            received.completed = True
            return response

        return handle

    def _server_stream(self, spec):
        async def handle(request, context):
            received = self._record(spec.name, context)
            received.requests.append(request)
            try:
                for n in range(self.stream_answers):
                    await self._hold(received)
                    response = spec.output_type()
                    response.status.code = codes.SUCCESS
                    response.status.description = f"upstream {spec.name} {n}"
                    response.status.details = "x" * self.payload_bytes
                    yield response
                    received.sent += 1
                received.completed = True
            except asyncio.CancelledError:
                received.cancelled = True
                raise

        return handle

    def _bidi(self, spec):
        async def handle(requests, context):
            received = self._record(spec.name, context)
            n = 0
            try:
                async for request in requests:
                    received.requests.append(request)
                    await self._hold(received)
                    response = spec.output_type()
                    response.status.code = codes.SUCCESS
                    response.status.description = f"upstream {spec.name} {n}"
                    response.status.details = str(request.ByteSize())
                    n += 1
                    yield response
                received.completed = True
            except asyncio.CancelledError:
                received.cancelled = True
                raise

        return handle


def _mark_cancelled(received: Received, context) -> None:
    if context.cancelled() or not received.completed:
        received.cancelled = True


def list_workflows(**ids) -> service_pb2.ListWorkflowsRequest:
    return service_pb2.ListWorkflowsRequest(user_app_id=resources_pb2.UserAppIDSet(**ids))


def main() -> None:
    """`python -m tests.support.upstream PORT`: serve (without recording) until killed, as
    the benchmarks run it, in a process of its own."""
    import sys

    async def serve(port: int) -> None:
        upstream = TestUpstream(record=False)
        print(f"listening {await upstream._start(port)}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))


if __name__ == "__main__":
    main()
