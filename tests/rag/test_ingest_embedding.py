"""Ingest embeds each distinct chunk text of a push once, in one embedder call for the whole push, and the
stored vectors are the embedder's own (real SQLite, real local embedder)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from llmops.core.settings import RagSettings
from llmops.gateway import OnnxEmbedder
from llmops.rag._sql import SqlRagStore
from llmops.rag.service import DocumentInput, RagService

P = "proj_a"
TEXT = (
    "# Warranty\n\nEvery pump carries a two-year warranty from the delivery date.\n\n"
    "## Claims\n\nClaims are filed through the support portal with the serial number and a photo of the plate.\n"
)


class _Recorder:
    """The real embedder, with the texts of each call kept (to check what ingest asked it to embed)."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        self.calls.append(list(texts))
        return self.inner.embed(texts)


async def test_identical_chunks_of_a_push_are_embedded_once_in_one_call(
    sqlite_engine: Engine, embedder: OnnxEmbedder
) -> None:
    """Three documents, two with the same text: one embedder call, each distinct chunk text in it once, and the
    duplicate document's chunks stored with the very same vectors."""
    recorder = _Recorder(embedder)
    service = RagService(SqlRagStore(sqlite_engine), recorder, RagSettings(chunk_size=80, chunk_overlap=10))
    await service.create_collection(P, "kb")
    docs = [
        DocumentInput("a", TEXT, "markdown"),
        DocumentInput("b", TEXT, "markdown"),
        DocumentInput("c", "# Returns\n\nReturns are accepted within 30 days with the receipt.\n", "markdown"),
    ]
    res = await service.ingest(P, "kb", docs)
    assert len(recorder.calls) == 1
    texts = recorder.calls[0]
    assert len(texts) == len(set(texts)) == res.embedded
    assert res.chunks == res.embedded + res.reused and res.reused > 0
    _, a_chunks = await service.get_document(P, "kb", "a")
    _, b_chunks = await service.get_document(P, "kb", "b")
    ids, vectors, _ = service.store.all_embeddings(P, "kb")
    by_id = dict(zip(ids, vectors, strict=True))
    assert [c.content_hash for c in a_chunks] == [c.content_hash for c in b_chunks]
    for a, b in zip(a_chunks, b_chunks, strict=True):
        assert np.array_equal(by_id[a.chunk_id], by_id[b.chunk_id])
    direct, _ = embedder.embed(texts)
    for c in a_chunks:
        embedded = texts.index(f"{c.heading}\n{c.text}" if c.heading else c.text)
        assert float(np.dot(by_id[c.chunk_id], direct[embedded])) > 0.9999
