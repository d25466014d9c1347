"""One pipelined connection to Redis (or Valkey), for the rate-limit checks on the request
path (access/redis_rates.py).

Every command made in one turn of the event loop goes out in one write, and replies are
matched to callers in the order Redis sends them (Redis answers a connection's commands in
order). Replies are parsed by `hiredis`, Redis's own C parser. Against a general client
(redis-py: a connection pool, a lock and retry wrappers around every command) this costs
the server about a third of the CPU per check, which is most of what a Redis-backed limit
adds to a request (benchmarks/results.md, benchmark 16).

A command not answered within `timeout` seconds fails, with every command behind it: the
connection is dropped and the next command opens a new one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

Reply = bytes | int | list | None


class RedisReplyError(Exception):
    """Redis answered a command with an error (`-ERR …`, `-NOSCRIPT …`)."""


class RedisUnavailable(ConnectionError):
    """The connection could not be opened, was lost, or a reply was late."""


def bulk(args: tuple) -> bytes:
    """Arguments as RESP bulk strings, without the array's header."""
    parts = []
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def encode(args: tuple) -> bytes:
    """A command as RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(args) + bulk(args)


class _Address:
    """What a `redis://`, `rediss://` or `unix://` URL names."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.tls = parts.scheme == "rediss"
        self.unix_path = unquote(parts.path) if parts.scheme == "unix" else None
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        db = query.get("db", [""])[0]
        if self.unix_path is None and parts.path.strip("/"):
            db = parts.path.strip("/")
        self.db = int(db or 0)

    def hello(self) -> list[tuple]:
        """The commands a new connection sends before any other."""
        commands: list[tuple] = []
        if self.password is not None:
            user = (self.username,) if self.username else ()
            commands.append((b"AUTH", *user, self.password))
        if self.db:
            commands.append((b"SELECT", self.db))
        return commands


class _Protocol(asyncio.Protocol):
    def __init__(self, pipe: RedisPipe) -> None:
        self._pipe = pipe
        self._reader = hiredis.Reader(replyError=RedisReplyError)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._pipe._waiting
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if not waiting:  # a reply nobody waits for: the stream is out of step
                self._pipe._drop(RedisUnavailable("Redis sent an unexpected reply"))
                return
            future, _ = waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pipe._lost(self, RedisUnavailable(f"connection to Redis lost: {exc or 'closed'}"))


class RedisPipe:
    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self._address = _Address(url)
        self.timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._outgoing: list[bytes] = []
        self._waiting: deque[tuple[asyncio.Future[Reply], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None

    async def call(self, *args: bytes | str | int) -> Reply:
        """One command's reply; an error reply is returned as a `RedisReplyError`, not
        raised (a caller may act on it, as on NOSCRIPT). Raises RedisUnavailable."""
        return await self.send(encode(args))

    async def send(self, command: bytes) -> Reply:
        """`call` for a command already encoded (`encode`), as `call` answers."""
        if self._transport is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(command)
        self._waiting.append((future, loop.time()))
        return await future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self._transport is None:  # lost since: the waiting callers have been failed
            return
        self._transport.write(b"".join(outgoing))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout, self._check)

    def _check(self) -> None:
        """Fail everything once the oldest command waits longer than the timeout; else look
        again when it would."""
        self._watchdog = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        late = self._waiting[0][1] + self.timeout - loop.time()
        if late <= 0:
            self._drop(RedisUnavailable(f"Redis did not answer within {self.timeout:g}s"))
        else:
            self._watchdog = loop.call_later(late, self._check)

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        address = self._address
        protocol = _Protocol(self)
        try:
            if address.unix_path is not None:
                opening = loop.create_unix_connection(lambda: protocol, address.unix_path)
            else:
                context = ssl.create_default_context() if address.tls else None
                opening = loop.create_connection(
                    lambda: protocol, address.host, address.port, ssl=context
                )
            transport, _ = await asyncio.wait_for(opening, self.timeout)
        except OSError as exc:  # a timeout included
            raise RedisUnavailable(f"cannot connect to Redis: {exc or type(exc).__name__}") from exc
        self._transport, self._protocol = transport, protocol
        for command in address.hello():
            reply = await self.call(*command)
            if isinstance(reply, RedisReplyError):  # its text never holds the password
                refused = RedisUnavailable(f"Redis refused {command[0].decode()}: {reply}")
                self._drop(refused)
                raise refused

    def _lost(self, protocol: _Protocol, error: Exception) -> None:
        if protocol is self._protocol:
            self._drop(error)

    def _drop(self, error: Exception) -> None:
        """Close the connection and fail every command waiting on it."""
        transport, self._transport, self._protocol = self._transport, None, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, deque()
        self._outgoing = []
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        self._drop(RedisUnavailable("closed"))
