"""The one outbound HTTP client: explicit timeouts and pool limits, errors mapped to llmops errors.

Built on aiohttp: under load httpx's connection pool cost the gateway ~10x throughput (measured in
benchmarks/gateway_overhead.py). The session is created lazily inside the running event loop.
Redirects are never followed: upstream URLs come only from configuration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from llmops.core.errors import UpstreamError, UpstreamTimeoutError


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class StreamResponse:
    status: int
    headers: dict[str, str]
    _resp: aiohttp.ClientResponse
    _provider: str

    async def read(self) -> bytes:
        return await self._resp.read()

    async def lines(self) -> AsyncIterator[bytes]:
        try:
            async for line in self._resp.content:
                yield line.rstrip(b"\r\n")
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"upstream {self._provider} stream stalled", provider=self._provider) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"upstream {self._provider} stream broke: {type(exc).__name__}",
                provider=self._provider,
                code="upstream_stream_broken",
            ) from exc


class HttpClient:
    def __init__(self, *, max_connections: int = 512) -> None:
        self._max = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max, limit_per_host=self._max, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        return self._session

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, timeout_s: float, provider: str
    ) -> HttpResponse:
        try:
            async with self._get().post(
                url, data=body, headers=headers, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                data = await resp.read()
                return HttpResponse(resp.status, dict(resp.headers), data)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"upstream {provider} timed out", provider=provider) from exc
        except aiohttp.ClientError as exc:
            raise _connection_error(provider, exc) from exc

    @asynccontextmanager
    async def stream(
        self, url: str, body: bytes, headers: dict[str, str], *, timeout_s: float, provider: str
    ) -> AsyncIterator[StreamResponse]:
        """POST and stream the answer; ``timeout_s`` bounds connecting and each read (idle time)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        try:
            ctx = self._get().post(url, data=body, headers=headers, allow_redirects=False, timeout=timeout)
            resp = await ctx.__aenter__()
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"upstream {provider} timed out", provider=provider) from exc
        except aiohttp.ClientError as exc:
            raise _connection_error(provider, exc) from exc
        try:
            yield StreamResponse(resp.status, dict(resp.headers), resp, provider)
        finally:
            resp.release()
            await ctx.__aexit__(None, None, None)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _connection_error(provider: str, exc: Exception) -> UpstreamError:
    return UpstreamError(
        f"upstream {provider} connection failed: {type(exc).__name__}",
        provider=provider,
        code="upstream_connection_error",
    )


def create_http_client() -> HttpClient:
    return HttpClient()
