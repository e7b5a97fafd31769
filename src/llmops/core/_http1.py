"""A small HTTP/1.1 client for upstream calls: keep-alive connections per origin, parsed by llhttp (httptools).

Why not aiohttp: a gateway call is one POST to a keep-alive upstream, and aiohttp's general machinery (cookie
jar, tracing hooks, multidict headers, per-request timer objects) cost ~200 µs of CPU per call on the 2-core
machines we measure on (benchmarks/gateway_overhead.py), a fifth of the gateway's whole added latency. This
client does just what upstream calls need:

- ``POST`` (any method) with a bytes body, over ``http`` or ``https`` (TLS with the system's default context);
- responses framed by ``Content-Length``, ``Transfer-Encoding: chunked`` or the connection's end;
  ``Content-Encoding: gzip``/``deflate`` decoded; at most ``max_body_bytes`` kept;
- keep-alive reuse (LIFO, idle connections dropped after ``keepalive_s``); a reused connection that the server had
  already closed (nothing of the answer received) is retried once on a new connection, as browsers do;
- a timer per wait (connect, headers, each body read) — one ``TimerHandle``, no task or context manager;
- streaming bodies with flow control (reading pauses while more than 1 MiB waits for the consumer).

Redirects are never followed and no proxy is used: upstream URLs come only from configuration.
Errors are plain exceptions (:class:`ConnectionFailed`, :class:`ReadTimeout`, :class:`BodyTooLarge`,
:class:`ProtocolError`); ``core.http`` maps them to llmops errors.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httptools

_PAUSE_AT = 1 << 20  # buffered bytes of a streamed body before reading pauses


class ConnectionFailed(Exception):
    """Could not connect, or the connection broke (``reused``: it had served an earlier request)."""

    def __init__(self, message: str, *, reused: bool = False, received: bool = False) -> None:
        super().__init__(message)
        self.reused, self.received = reused, received


class ReadTimeout(Exception):
    """Nothing arrived within the timeout."""


class BodyTooLarge(Exception):
    pass


class ProtocolError(Exception):
    """The upstream's bytes were not HTTP/1.1."""


class Headers(dict[str, str]):
    """Response headers with lower-case names; lookups ignore case (``headers.get("Retry-After")``)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class _Origin:
    __slots__ = ("scheme", "host", "port", "ssl", "host_header")

    def __init__(self, scheme: str, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> None:
        self.scheme, self.host, self.port, self.ssl = scheme, host, port, ssl_ctx
        default = 443 if scheme == "https" else 80
        self.host_header = host if port == default else f"{host}:{port}"


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; serves one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int) -> None:
        self._loop = loop
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.uses = 0
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers = Headers()
        self._header_name = b""
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.total = 0
        self.complete = False
        self.received = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the end is in the bytes, not the connection's close
        self._paused = False
        self._inflate: Any = None
        self._keep_alive = False

    # --- asyncio.Protocol ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:  # a callback's own error arrives as the context
            cause = exc.__context__
            known = isinstance(cause, BodyTooLarge | ProtocolError)
            self._fail(cause if known else ProtocolError(f"malformed HTTP response: {exc}"))  # type: ignore[arg-type]
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost decides what the end means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete or self.error is not None:
            self._wake()
            return
        if self._headers_done and not self._framed:  # body delimited by the connection's end
            self.complete = True
            self._wake()
            return
        self._fail(
            ConnectionFailed(
                f"connection closed by upstream{f': {exc}' if exc else ''}",
                reused=self.uses > 1,
                received=self.received,
            )
        )

    # --- httptools callbacks ------------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        prev = self.headers.get(key)
        dict.__setitem__(self.headers, key, f"{prev}, {text}" if prev is not None else text)

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status < 200:  # 1xx interim answer: wait for the real one
            self.headers = Headers()
            return
        h = self.headers
        self._framed = "content-length" in h or "chunked" in h.get("transfer-encoding", "").lower()
        encoding = h.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32 if encoding != "deflate" else zlib.MAX_WBITS)
        self._headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._inflate is not None:
            try:
                body = self._inflate.decompress(body)
            except zlib.error as exc:
                raise ProtocolError(f"malformed compressed body: {exc}") from exc
        self.total += len(body)
        if self.total > self._max_body:
            raise BodyTooLarge(f"response body exceeds {self._max_body} bytes")
        if body:
            self.chunks.append(body)
            self.buffered += len(body)
            if self.buffered > _PAUSE_AT and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status < 200:
            return
        if self._inflate is not None:
            tail = self._inflate.flush()
            if tail:
                self.chunks.append(tail)
                self.buffered += len(tail)
        self._keep_alive = self._parser.should_keep_alive()
        self.complete = True
        self._wake()

    # --- used by the client -------------------------------------------------------------------------------
    def start(self, request: bytes) -> None:
        self._reset()
        self.uses += 1
        assert self.transport is not None
        self.transport.write(request)

    async def wait(self, timeout_s: float, deadline: float | None) -> None:
        """Until something happens (headers, a body chunk, the end, an error), ``timeout_s`` passes or the
        loop's clock reaches ``deadline``."""
        if self.error is not None:
            raise self.error
        waiter = self._waiter = self._loop.create_future()
        at = self._loop.time() + timeout_s
        timer = self._loop.call_at(at if deadline is None or at < deadline else deadline, self._expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self.buffered = 0
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def headers_done(self) -> bool:
        return self._headers_done

    def reusable(self) -> bool:
        return self.complete and not self.closed and self.error is None and self._framed and self._keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self.error = ReadTimeout("upstream sent nothing within the timeout")
            waiter.set_result(None)
        self.abort()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Response:
    """A response whose headers have arrived; the body is read with :meth:`read` or :meth:`iter_chunks`."""

    def __init__(
        self, client: Http1Client, origin: _Origin, conn: _Connection, timeout_s: float, deadline: float | None
    ) -> None:
        self._client, self._origin, self._conn = client, origin, conn
        self._timeout, self._deadline = timeout_s, deadline
        self.status = conn.status
        self.headers = conn.headers
        self._released = False

    async def read(self) -> bytes:
        conn, parts = self._conn, []
        try:
            while not conn.complete:
                await conn.wait(self._timeout, self._deadline)
                if conn.chunks:
                    parts.append(conn.take())
        except BaseException:
            self.release()
            raise
        if conn.chunks:
            parts.append(conn.take())
        self.release()
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        try:
            while True:
                if conn.chunks:
                    yield conn.take()
                    continue
                if conn.complete:
                    break
                await conn.wait(self._timeout, self._deadline)
        finally:
            self.release()

    def release(self) -> None:
        """Back to the pool when the whole answer was read and the connection may be kept; else closed
        (an answer left half-read, a timeout, an error). Idempotent."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        if conn.reusable() and not conn.chunks:
            self._client._put(self._origin, conn)
        else:
            conn.abort() if not conn.complete else conn.close()
            self._client._forget()


class Http1Client:
    """Connections pooled per origin, at most ``max_connections`` open at once (callers wait beyond)."""

    def __init__(
        self, *, max_connections: int = 512, keepalive_s: float = 30.0, max_body_bytes: int = 100 * 1024 * 1024
    ) -> None:
        self._max = max_connections
        self._keepalive = keepalive_s
        self._max_body = max_body_bytes
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._origins: dict[str, tuple[_Origin, str]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        timeout_s: float,
        total: bool = False,
    ) -> Response:
        """Send the request and wait for the response's headers. Every wait (connecting, the headers, each body
        read) is bounded by ``timeout_s``; with ``total`` the whole exchange, body included, is bounded too."""
        deadline = asyncio.get_running_loop().time() + timeout_s if total else None
        origin, target = self._origin(url)
        head = [f"{method} {target} HTTP/1.1\r\nhost: {origin.host_header}\r\ncontent-length: {len(body)}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in ("host", "content-length"))
        if not any(k.lower() == "user-agent" for k in headers):
            head.append("user-agent: llmops\r\n")
        head.append("\r\n")
        raw = "".join(head).encode("latin-1") + body
        for attempt in (1, 2):
            conn = await self._acquire(origin, timeout_s)
            conn.start(raw)
            try:
                while not conn.headers_done:
                    await conn.wait(timeout_s, deadline)
            except ConnectionFailed as exc:
                conn.close()
                self._forget()
                if attempt == 1 and exc.reused and not exc.received:  # the server had closed the idle connection
                    continue
                raise
            except BaseException:
                conn.abort()
                self._forget()
                raise
            return Response(self, origin, conn, timeout_s, deadline)
        raise AssertionError("unreachable")

    def _origin(self, url: str) -> tuple[_Origin, str]:
        cached = self._origins.get(url)
        if cached is not None:
            return cached
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ConnectionFailed(f"unsupported URL {url!r}: use http:// or https://")
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        origin = _Origin(scheme, parts.hostname, port, self._ssl if scheme == "https" else None)
        if len(self._origins) < 1024:
            self._origins[url] = (origin, target)
        return origin, target

    async def _acquire(self, origin: _Origin, timeout_s: float) -> _Connection:
        idle = self._idle.get((origin.scheme, origin.host, origin.port))
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            conn.close()
            self._forget()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max)
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self._max_body),
                    origin.host,
                    origin.port,
                    ssl=origin.ssl,
                    server_hostname=origin.host if origin.ssl is not None else None,
                )
        except TimeoutError as exc:
            self._forget()
            raise ReadTimeout(f"connecting to {origin.host_header} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            self._forget()
            raise ConnectionFailed(f"cannot connect to {origin.host_header}: {type(exc).__name__}") from exc
        except BaseException:
            self._forget()
            raise
        return conn

    def _put(self, origin: _Origin, conn: _Connection) -> None:
        if self._closed:
            conn.close()
            self._forget()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault((origin.scheme, origin.host, origin.port), []).append(conn)

    def _forget(self) -> None:
        """A connection was closed: its slot is free."""
        if self._slots is not None:
            self._slots.release()

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
                self._forget()
        self._idle.clear()
