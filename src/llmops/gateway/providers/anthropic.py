"""The Anthropic Messages API as an upstream, translated both ways (``_anthropic_translate``).

Streaming maps Anthropic's event sequence to OpenAI chunks; a stream that ends before
``message_stop`` raises (never a fake finish). Anthropic's HTTP errors keep their status, so the router's
retry/fallback rules apply unchanged (429/529 retry, 400 fails).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmops.core.errors import InvalidInputError, UpstreamError
from llmops.core.http import HttpClient
from llmops.gateway.providers._anthropic_translate import (
    AnthropicStreamError,
    AnthropicStreamTranslator,
    TranslationError,
    from_anthropic_response,
    to_anthropic_request,
)
from llmops.gateway.providers.base import upstream_http_error

API_VERSION = "2023-06-01"


class AnthropicProvider:
    enforces_timeout = True  # core.http: total timeout (plain calls), connect + per-read timeout (streams)
    provider_name = "anthropic"
    supports_tools = True

    def __init__(self, client: HttpClient, *, base_url: str, api_key: str | None) -> None:
        self._client = client
        self._url = base_url.rstrip("/").removesuffix("/v1") + "/v1/messages"
        self._headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        if api_key:
            self._headers["x-api-key"] = api_key

    def _request(self, body: dict[str, Any], model: str, *, stream: bool) -> bytes:
        try:
            payload = to_anthropic_request({**body, "stream": stream}, model=model)
        except TranslationError as exc:
            raise InvalidInputError(exc.message, param=exc.param) from exc
        return orjson.dumps(payload)

    async def chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> dict[str, Any]:
        payload = self._request(body, model, stream=False)
        resp = await self._client.post(self._url, payload, self._headers, timeout_s=timeout_s, provider="anthropic")
        if resp.status >= 400:
            raise upstream_http_error("anthropic", resp.status, resp.body, resp.headers.get("Retry-After"))
        try:
            return from_anthropic_response(orjson.loads(resp.body), created=int(time.time()))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise UpstreamError("upstream anthropic sent a malformed message", provider="anthropic") from exc

    async def stream_chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        payload = self._request(body, model, stream=True)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        translator = AnthropicStreamTranslator(created=int(time.time()), include_usage=include_usage)
        headers = {**self._headers, "accept": "text/event-stream"}
        async with self._client.stream(self._url, payload, headers, timeout_s=timeout_s, provider="anthropic") as resp:
            if resp.status >= 400:
                raise upstream_http_error("anthropic", resp.status, await resp.read(), resp.headers.get("Retry-After"))
            async for event, data in _events(resp.lines()):
                try:
                    chunks = translator.feed(event, data)
                except AnthropicStreamError as exc:
                    raise UpstreamError(
                        f"upstream anthropic stream error: {exc}", provider="anthropic", code="upstream_stream_error"
                    ) from exc
                for chunk in chunks:
                    yield chunk
                if translator.finished:
                    return
        raise UpstreamError(
            "upstream anthropic stream ended before message_stop",
            provider="anthropic",
            code="upstream_stream_truncated",
        )

    async def aclose(self) -> None:
        return None


async def _events(lines: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Server-sent events: ``event:`` names the type, ``data:`` carries JSON; a blank line ends one."""
    event = ""
    async for line in lines:
        if line.startswith(b"event:"):
            event = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:].strip())
            except orjson.JSONDecodeError as exc:
                raise UpstreamError("upstream anthropic sent a malformed event", provider="anthropic") from exc
            yield event or str(data.get("type", "")), data
            event = ""
