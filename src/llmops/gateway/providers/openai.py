"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, llama.cpp server) by base URL + key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmops.core.errors import UpstreamError
from llmops.core.http import HttpClient
from llmops.gateway.providers.base import upstream_http_error


class OpenAIProvider:
    enforces_timeout = True  # core.http: total timeout (plain calls), connect + per-read timeout (streams)

    def __init__(
        self,
        client: HttpClient,
        *,
        base_url: str,
        api_key: str | None,
        provider_name: str = "openai",
        supports_tools: bool = True,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {"content-type": "application/json", "accept": "application/json"}
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
        payload = orjson.dumps({**body, "model": model, "stream": True})
        headers = {**self._headers, "accept": "text/event-stream"}
        name = self.provider_name
        async with self._client.stream(
            self._base + "/chat/completions", payload, headers, timeout_s=timeout_s, provider=name
        ) as resp:
            if resp.status >= 400:
                raise upstream_http_error(name, resp.status, await resp.read(), resp.headers.get("Retry-After"))
            async for chunk in _parse_sse(resp.lines(), name):
                yield chunk

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
        name = self.provider_name
        resp = await self._client.post(
            self._base + path, orjson.dumps(payload), self._headers, timeout_s=timeout_s, provider=name
        )
        if resp.status >= 400:
            raise upstream_http_error(name, resp.status, resp.body, resp.headers.get("Retry-After"))
        try:
            return orjson.loads(resp.body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"upstream {name} sent malformed JSON", provider=name) from exc

    async def aclose(self) -> None:
        return None


async def _parse_sse(lines: AsyncIterator[bytes], provider: str) -> AsyncIterator[dict[str, Any]]:
    """OpenAI SSE frames → chunk dicts. Garbage, in-band errors and a missing [DONE] raise."""
    async for line in lines:
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return
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
    raise UpstreamError(
        f"upstream {provider} stream ended without [DONE]", provider=provider, code="upstream_stream_truncated"
    )
