"""RAG's implementation of the gateway's :class:`~llmops.gateway.Retriever` (wired by ``app.py``)."""

from __future__ import annotations

from llmops.gateway import CallContext, Passage
from llmops.rag.service import RagService, TraceParent


class RagRetriever:
    def __init__(self, service: RagService) -> None:
        self._service = service

    async def retrieve(self, ctx: CallContext, collection: str, query: str, *, k: int | None) -> list[Passage]:
        parent = TraceParent(ctx.trace_id, ctx.span_id, ctx.user_id, ctx.session_id, ctx.principal.key_id)
        hits = await self._service.search(ctx.principal.project_id, collection, query, k=k, parent=parent)
        return [Passage(h.chunk.chunk_id, h.chunk.document_id, h.source, h.chunk.text, h.score) for h in hits]
