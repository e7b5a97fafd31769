"""The provider protocols. Providers speak the OpenAI shapes (plain dicts) on both sides.

Errors: a provider raises :class:`llmops.core.errors.UpstreamError` (``upstream_status`` set from the
upstream's HTTP status, ``code`` e.g. ``context_length_exceeded``) or ``UpstreamTimeoutError``; the
router decides from those whether to retry, fall back or give up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from llmops.core.errors import UpstreamError


class ChatProvider(Protocol):
    provider_name: str  # value of gen_ai.provider.name
    supports_tools: bool

    async def chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> dict[str, Any]:
        """Non-streaming chat completion; returns an OpenAI ``chat.completion`` dict."""
        ...

    def stream_chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        """Streaming chat completion: OpenAI ``chat.completion.chunk`` dicts. A stream that breaks or
        ends without its terminator raises UpstreamError; it never ends quietly."""
        ...

    async def aclose(self) -> None: ...


class EmbeddingProvider(Protocol):
    provider_name: str

    async def embed(
        self, inputs: list[str], *, model: str, dimensions: int | None, timeout_s: float
    ) -> tuple[list[list[float]], int]:
        """Vectors for ``inputs`` and the number of input tokens used."""
        ...

    async def aclose(self) -> None: ...


def upstream_http_error(provider: str, status: int, body: bytes, retry_after: str | None) -> UpstreamError:
    """Build the error for a non-2xx upstream answer, keeping its message and code when it sent one."""
    import orjson

    message, code = f"upstream {provider} answered HTTP {status}", None
    try:
        data = orjson.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else {}
        if isinstance(err, dict):
            message = str(err.get("message") or message)[:500]
            code = err.get("code") or err.get("type")
    except orjson.JSONDecodeError:
        pass
    if code is None and status == 400 and "context" in message.lower() and "length" in message.lower():
        code = "context_length_exceeded"
    return UpstreamError(
        message,
        provider=provider,
        upstream_status=status,
        retry_after=_parse_retry_after(retry_after),
        code=str(code) if code else None,
    )


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
