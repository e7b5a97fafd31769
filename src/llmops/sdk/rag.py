"""``llmops.rag_search``: search a RAG collection of an llmops server over HTTP (``POST /api/rag/{c}/search``).

Light on purpose (httpx only, no server code). The server URL and key come from the arguments or from
``LLMOPS_BASE_URL`` / ``OPENAI_BASE_URL`` and ``LLMOPS_API_KEY`` / ``OPENAI_API_KEY``, like the prompt client.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx


def _base_url(value: str | None) -> str:
    url = value or os.environ.get("LLMOPS_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:4100"
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def rag_search(
    collection: str,
    query: str,
    *,
    k: int = 5,
    mode: str = "hybrid",
    filters: dict[str, Any] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """The top ``k`` chunks, best first: ``{"rank", "score", "source", "title", "metadata", "chunk": {...}}``.

    Raises ``httpx.HTTPStatusError`` when the server refuses (the body holds the error envelope)."""
    key = api_key or os.environ.get("LLMOPS_API_KEY") or os.environ.get("OPENAI_API_KEY") or ""
    resp = httpx.post(
        f"{_base_url(base_url)}/api/rag/{quote(collection, safe='')}/search",
        json={"query": query, "k": k, "mode": mode, "filters": filters or {}},
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
    )
    resp.raise_for_status()
    return list(resp.json()["data"])
