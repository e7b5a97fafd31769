"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, llama.cpp server) by base URL + key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from llmops.core.errors import UpstreamError, UpstreamTimeoutError
from llmops.gateway.providers.base import upstream_http_error


class OpenAIProvider:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None,
        provider_name: str = "openai",
        supports_tools: bool = True,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self.provider_name = provider_name
        self.supports_tools = supports_tools

    async def chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> dict[str, Any]:
        payload = {**body, "model": model, "stream": False}
        payload.pop("stream_options", None)
        data = await self._post_json("/chat/completions", payload, timeout_s)
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamError(f"upstream {self.provider_name} sent no choices", provider=self.provider_name)
        return data

    async def stream_chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        payload = {**body, "model": model, "stream": True}
        try:
            async with self._client.stream(
                "POST",
                self._base + "/chat/completions",
                content=orjson.dumps(payload),
                headers=self._headers,
                timeout=httpx.Timeout(timeout_s),
            ) as resp:
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    raise upstream_http_error(
                        self.provider_name, resp.status_code, raw, resp.headers.get("retry-after")
                    )
                async for chunk in _parse_sse(resp, self.provider_name):
                    yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(f"upstream {self.provider_name} timed out", provider=self.provider_name) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"upstream {self.provider_name} connection failed: {type(exc).__name__}",
                provider=self.provider_name,
                code="upstream_connection_error",
            ) from exc

    async def embed(
        self, inputs: list[str], *, model: str, dimensions: int | None, timeout_s: float
    ) -> tuple[list[list[float]], int]:
        payload: dict[str, Any] = {"model": model, "input": inputs}
        if dimensions:
            payload["dimensions"] = dimensions
        data = await self._post_json("/embeddings", payload, timeout_s)
        try:
            rows = sorted(data["data"], key=lambda d: d["index"])
            return [r["embedding"] for r in rows], int(data.get("usage", {}).get("prompt_tokens", 0))
        except (KeyError, TypeError) as exc:
            raise UpstreamError(
                f"upstream {self.provider_name} sent a malformed embedding", provider=self.provider_name
            ) from exc

    async def _post_json(self, path: str, payload: dict[str, Any], timeout_s: float) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                resp = await self._client.post(
                    self._base + path,
                    content=orjson.dumps(payload),
                    headers=self._headers,
                    timeout=httpx.Timeout(timeout_s),
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeoutError(f"upstream {self.provider_name} timed out", provider=self.provider_name) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"upstream {self.provider_name} connection failed: {type(exc).__name__}",
                provider=self.provider_name,
                code="upstream_connection_error",
            ) from exc
        if resp.status_code >= 400:
            raise upstream_http_error(
                self.provider_name, resp.status_code, resp.content, resp.headers.get("retry-after")
            )
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"upstream {self.provider_name} sent malformed JSON", provider=self.provider_name
            ) from exc

    async def aclose(self) -> None:
        return None


async def _parse_sse(resp: httpx.Response, provider: str) -> AsyncIterator[dict[str, Any]]:
    done = False
    async for line in resp.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"upstream {provider} sent a malformed stream chunk", provider=provider) from exc
        if isinstance(chunk, dict) and "error" in chunk:
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            raise UpstreamError(
                f"upstream {provider} stream error: {str(err.get('message'))[:300]}",
                provider=provider,
                code="upstream_stream_error",
            )
        yield chunk
    if not done:
        raise UpstreamError(
            f"upstream {provider} stream ended without [DONE]", provider=provider, code="upstream_stream_truncated"
        )
