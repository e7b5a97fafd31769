"""The upstream HTTP/1.1 client against real loopback servers that misbehave in the ways upstreams do.

Each server is a real asyncio TCP server answering with raw bytes, so framing (Content-Length, chunked, the
connection's end), keep-alive, compression, stalls and resets are exactly what the client sees in production.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from llmops.core.errors import UpstreamError, UpstreamTimeoutError
from llmops.core.http import HttpClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request; body by Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


@asynccontextmanager
async def server(handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server; yields its base URL and the list of connections it accepted (one entry per connection)."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl_ctx)
    port = srv.sockets[0].getsockname()[1]
    scheme = "https" if ssl_ctx else "http"
    try:
        yield f"{scheme}://localhost:{port}" if ssl_ctx else f"http://127.0.0.1:{port}", connections
    finally:
        srv.close()
        await srv.wait_closed()


def answer(body: bytes, *, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keep_alive_reuses_one_connection_and_sends_the_body() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_request(reader)
            seen.append(body)
            assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
            assert b"authorization: Bearer k" in head
            writer.write(answer(b'{"ok": %d}' % len(seen), extra="Retry-After: 3\r\n"))
            await writer.drain()

    client = HttpClient()
    async with server(handler) as (url, connections):
        for i in range(5):
            resp = await client.post(
                url + "/v1/chat/completions", b'{"n": %d}' % i, {"authorization": "Bearer k"}, timeout_s=5, provider="t"
            )
            assert resp.status == 200 and resp.body == b'{"ok": %d}' % (i + 1)
            assert resp.headers.get("Retry-After") == "3" and resp.headers.get("retry-after") == "3"
        assert len(connections) == 1
        assert seen == [b'{"n": %d}' % i for i in range(5)]
    await client.aclose()


async def test_chunked_gzip_and_connection_close_bodies() -> None:
    payload = b'{"choices": []}' * 200
    packed = gzip.compress(payload)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        path = head.split(b" ")[1]
        if path == b"/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(0, len(payload), 700):
                part = payload[i : i + 700]
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif path == b"/gzip":
            writer.write(answer(packed, extra="content-encoding: gzip\r\n"))
        else:  # no length: the body ends with the connection
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + payload)
            await writer.drain()
            writer.close()

    client = HttpClient()
    async with server(handler) as (url, _):
        for path in ("/chunked", "/gzip", "/eof"):
            resp = await client.post(url + path, b"{}", {}, timeout_s=5, provider="t")
            assert resp.body == payload, path
    await client.aclose()


async def test_a_stale_keep_alive_connection_is_retried_on_a_new_one() -> None:
    """The server closes each connection right after its answer (keep-alive not announced as closed): the
    client's next call finds the pooled connection dead before anything was received and retries once."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"one"))
        await writer.drain()
        writer.close()

    client = HttpClient()
    async with server(handler) as (url, connections):
        for _ in range(3):
            resp = await client.post(url + "/x", b"", {}, timeout_s=5, provider="t")
            assert resp.body == b"one"
            await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        assert len(connections) == 3
    await client.aclose()


async def test_timeouts_connection_errors_and_broken_answers_are_llmops_errors(unused_tcp_port: int) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        path = head.split(b" ")[1]
        if path == b"/stall":
            await asyncio.sleep(5)
        elif path == b"/trickle":  # each byte in time, the whole answer not
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n")
            for _ in range(50):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        elif path == b"/reset":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf")
            await writer.drain()
            writer.transport.abort()
        else:
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()

    client = HttpClient()
    async with server(handler) as (url, _):
        with pytest.raises(UpstreamTimeoutError):
            await client.post(url + "/stall", b"", {}, timeout_s=0.3, provider="t")
        with pytest.raises(UpstreamTimeoutError):  # the plain call's timeout bounds the whole exchange
            await client.post(url + "/trickle", b"", {}, timeout_s=0.5, provider="t")
        with pytest.raises(UpstreamError) as broken:
            await client.post(url + "/reset", b"", {}, timeout_s=5, provider="t")
        assert broken.value.code == "upstream_connection_error"
        with pytest.raises(UpstreamError, match="malformed"):
            await client.post(url + "/garbage", b"", {}, timeout_s=5, provider="t")
    with pytest.raises(UpstreamError) as refused:
        await client.post(f"http://127.0.0.1:{unused_tcp_port}/x", b"", {}, timeout_s=5, provider="t")
    assert refused.value.code == "upstream_connection_error"
    await client.aclose()


async def test_streams_yield_lines_and_report_stalls_and_breaks() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        path = head.split(b" ")[1]
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        events = [b'data: {"a": 1}\r\n\r\n', b'data: {"b":', b" 2}\n\ndata: [DONE]\n\n"]
        for event in events:
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.02)
        if path == b"/stall":
            await asyncio.sleep(5)
        elif path == b"/break":
            writer.transport.abort()
            return
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    client = HttpClient()
    async with server(handler) as (url, _):
        async with client.stream(url + "/ok", b"{}", {}, timeout_s=5, provider="t") as resp:
            assert resp.status == 200 and resp.headers.get("Content-Type") == "text/event-stream"
            lines = [line async for line in resp.lines()]
        assert [x for x in lines if x] == [b'data: {"a": 1}', b'data: {"b": 2}', b"data: [DONE]"]
        with pytest.raises(UpstreamTimeoutError, match="stalled"):
            async with client.stream(url + "/stall", b"{}", {}, timeout_s=0.3, provider="t") as resp:
                _ = [line async for line in resp.lines()]
        with pytest.raises(UpstreamError) as broken:
            async with client.stream(url + "/break", b"{}", {}, timeout_s=5, provider="t") as resp:
                _ = [line async for line in resp.lines()]
        assert broken.value.code == "upstream_stream_broken"
    await client.aclose()


async def test_a_stream_left_half_read_does_not_poison_the_pool() -> None:
    """A consumer that stops early (client gone) closes that connection; the next call gets a clean one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            body = b"line\n" * 1000
            writer.write(answer(body)[:-4000])  # the rest comes later: the first consumer leaves before it
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(body[-4000:])
            await writer.drain()

    client = HttpClient()
    async with server(handler) as (url, connections):
        async with client.stream(url + "/s", b"", {}, timeout_s=5, provider="t") as resp:
            async for _ in resp.lines():
                break
        again = await client.post(url + "/p", b"", {}, timeout_s=5, provider="t")
        assert again.body == b"line\n" * 1000
        assert len(connections) == 2
    await client.aclose()


async def test_https_upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS with certificate verification: a self-signed loopback server trusted through SSL_CERT_FILE."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"secure"))
        await writer.drain()

    client = HttpClient()
    async with server(handler, ssl_ctx=ctx) as (url, _):
        resp = await client.post(url + "/x", b"{}", {}, timeout_s=5, provider="t")
        assert resp.body == b"secure"
    await client.aclose()
