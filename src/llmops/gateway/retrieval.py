"""Retrieval-augmented chat: a request asks the gateway to retrieve passages and inject them as context.

Forms (the openai SDK sends the body extension through ``extra_body``)::

    x-llmops-rag: handbook          # header: collection, default k
    x-llmops-rag: handbook:3        # header: collection and k
    {"llmops": {"rag": {"collection": "handbook", "k": 3}}, ...}   # body extension (wins over the header)

The query is the last user message's text. The passages go into ONE system message placed first (after the
request's own system/developer messages); the ``llmops`` key is removed before the request goes upstream.
The gateway does not import ``llmops.rag``: the composition root injects a :class:`Retriever`, which records
the retrieval span (child of the chat span, same trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from llmops.core.errors import InvalidInputError
from llmops.gateway.recording import CallContext

HEADER = "x-llmops-rag"
BODY_KEY = "llmops"


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    document_id: str
    source: str
    text: str
    score: float


class Retriever(Protocol):
    async def retrieve(self, ctx: CallContext, collection: str, query: str, *, k: int | None) -> list[Passage]:
        """Top passages for ``query``; records a retrieval span under ``ctx`` (trace and parent span)."""
        ...


@dataclass(frozen=True)
class RagRequest:
    collection: str
    k: int | None


def wants_rag(ctx: CallContext, raw: Any) -> bool:
    return ctx.rag is not None or (isinstance(raw, dict) and BODY_KEY in raw)


def parse_rag(ctx: CallContext, raw: dict[str, Any]) -> RagRequest | None:
    ext = raw.get(BODY_KEY)
    if ext is not None:
        if not isinstance(ext, dict) or set(ext) - {"rag"}:
            raise InvalidInputError('llmops must be an object {"rag": {...}}', param=BODY_KEY)
        spec = ext.get("rag")
        if spec is None:
            return None
        if not isinstance(spec, dict) or not isinstance(spec.get("collection"), str) or not spec["collection"]:
            raise InvalidInputError("llmops.rag.collection is required", param="llmops.rag.collection")
        k = spec.get("k")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise InvalidInputError("llmops.rag.k must be a positive integer", param="llmops.rag.k")
        return RagRequest(spec["collection"], k)
    if ctx.rag:
        name, _, k_text = ctx.rag.strip().partition(":")
        if not name or (k_text and not k_text.isdigit()) or k_text == "0":
            raise InvalidInputError(f"{HEADER} must be COLLECTION or COLLECTION:K", param=HEADER)
        return RagRequest(name, int(k_text) if k_text else None)
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return _text(m.get("content"))
    return ""


def context_message(passages: list[Passage], max_chars: int) -> dict[str, Any]:
    parts: list[str] = []
    used = 0
    for i, p in enumerate(passages, start=1):
        block = f"[{i}] (source: {p.source})\n{p.text.strip()}"
        if used + len(block) > max_chars and parts:
            break
        parts.append(block[:max_chars])
        used += len(block)
    body = "\n\n".join(parts) if parts else "(no passage found)"
    return {
        "role": "system",
        "content": f"Answer using the context below when it is relevant; cite sources as [n].\n\nContext:\n{body}",
    }


async def apply_rag(retriever: Retriever, ctx: CallContext, raw: dict[str, Any], *, max_chars: int) -> dict[str, Any]:
    """The request with retrieved context injected (and the ``llmops`` extension removed)."""
    req = parse_rag(ctx, raw)
    body = {k: v for k, v in raw.items() if k != BODY_KEY}
    if req is None:
        return body
    messages = body.get("messages")
    query = last_user_text(messages)
    if not isinstance(messages, list) or not query.strip():
        raise InvalidInputError("retrieval needs a user message with text to search for", param="messages")
    passages = await retriever.retrieve(ctx, req.collection, query, k=req.k)
    ctx.attributes["llmops.rag.collection"] = req.collection
    ctx.attributes["llmops.rag.chunk_ids"] = [p.chunk_id for p in passages]
    lead = 0
    while (
        lead < len(messages)
        and isinstance(messages[lead], dict)
        and messages[lead].get("role") in ("system", "developer")
    ):
        lead += 1
    body["messages"] = [*messages[:lead], context_message(passages, max_chars), *messages[lead:]]
    return body
