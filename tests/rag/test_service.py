"""Ingestion, incremental sync and hybrid search through RagService on real SQLite and PostgreSQL with the
real local embedder: rows, versions and index versions are asserted in the store."""

from __future__ import annotations

import pytest

from llmops.core.errors import NotFoundError
from llmops.rag.service import DocumentInput, RagService
from tests.rag.conftest import CORPUS, corpus_inputs

P = "proj_a"


async def test_ingest_then_search_all_modes(service: RagService) -> None:
    """A pushed batch is chunked, embedded and found by vector, keyword and hybrid search."""
    await service.create_collection(P, "kb")
    res = await service.ingest(P, "kb", corpus_inputs())
    assert sorted(res.added) == sorted(CORPUS) and res.index_version == 1 and res.embedded == res.chunks > 0
    for mode in ("hybrid", "vector", "keyword"):
        hits = await service.search(P, "kb", "how many days to return an item for a refund", k=3, mode=mode)  # type: ignore[arg-type]
        assert hits and hits[0].chunk.document_id == "refunds", mode
    hits = await service.search(P, "kb", "refund", k=5, filters={"team": "it"})
    assert {h.chunk.document_id for h in hits} == {"security"}
    counts = service.reader.retrieval_counts(P, "kb")
    assert counts["refunds"] >= 3


async def test_reingest_reembeds_only_changed_chunks_and_keeps_history(service: RagService) -> None:
    """Re-ingesting the same corpus changes nothing; editing one section re-embeds only that section's chunks;
    sync removes vanished documents; history keeps every version; index versions record each change."""
    await service.create_collection(P, "kb")
    first = await service.ingest(P, "kb", corpus_inputs())
    same = await service.ingest(P, "kb", corpus_inputs())
    assert same.index_version == 1 and sorted(same.unchanged) == sorted(CORPUS) and same.embedded == 0
    edited = CORPUS["refunds"].replace("Gift cards", "Gift cards and software")
    before = {c.chunk_id for c in service.reader.list_chunks(P, "kb", document_ids=["refunds"])}
    second = await service.ingest(P, "kb", corpus_inputs(refunds=edited))
    assert second.updated == ["refunds"] and second.index_version == 2
    assert 0 < second.embedded < len(before) + 1 and second.reused >= 1
    after = service.reader.list_chunks(P, "kb", document_ids=["refunds"])
    assert {c.chunk_id for c in after} & before, "unchanged chunks keep their id"
    assert all(c.document_version == 2 for c in after)
    # sync with the ORIGINAL corpus minus `shipping`: refunds goes back to its first text (a new version)
    synced = await service.ingest(P, "kb", [d for d in corpus_inputs() if d.document_id != "shipping"], sync=True)
    assert synced.removed == ["shipping"] and synced.updated == ["refunds"] and synced.index_version == 3
    assert synced.embedded == second.embedded and synced.reused >= 1, "only the reverted section is re-embedded"
    assert [d.document_id for d in service.reader.list_documents(P, "kb")] == ["refunds", "security"]
    assert not service.reader.list_chunks(P, "kb", document_ids=["shipping"])
    hits = await service.search(P, "kb", "express shipping costs", k=5)
    assert all(h.chunk.document_id != "shipping" for h in hits)
    versions = await service.list_versions(P, "kb", "refunds")
    assert [v.version for v in versions] == [3, 2, 1] and versions[1].text == edited
    shipping = await service.list_versions(P, "kb", "shipping")
    assert shipping[0].deleted and shipping[1].text == CORPUS["shipping"]
    ivs = await service.list_index_versions(P, "kb")
    assert [(v.version, v.added, v.updated, v.removed) for v in ivs] == [(3, 0, 1, 1), (2, 0, 1, 0), (1, 3, 0, 0)]
    assert first.index_version == 1


async def test_bad_documents_are_reported_and_the_rest_ingested(service: RagService) -> None:
    """Empty, binary and unsupported-format documents are reported per document; the others are ingested."""
    await service.create_collection(P, "kb")
    docs = [
        *corpus_inputs(),
        DocumentInput("empty", "   \n"),
        DocumentInput("binary", "abc\x00def"),
        DocumentInput("weird", "hello", format="docx"),
    ]
    res = await service.ingest(P, "kb", docs)
    reasons = {e["document_id"]: e["reason"] for e in res.errors}
    assert set(reasons) == {"empty", "binary", "weird"} and "empty" in reasons["empty"]
    assert len(res.added) == 3


async def test_tenants_do_not_see_each_other(service: RagService) -> None:
    """Another project cannot see the collection nor its documents or chunks."""
    await service.create_collection(P, "kb")
    await service.ingest(P, "kb", corpus_inputs())
    with pytest.raises(NotFoundError):
        await service.search("proj_b", "kb", "refund")
    assert service.reader.list_documents("proj_b", "kb") == []
    chunk_ids = [c.chunk_id for c in service.reader.list_chunks(P, "kb")]
    with pytest.raises(NotFoundError):
        service.reader.get_embeddings("proj_b", chunk_ids[:1])
    emb = service.reader.get_embeddings(P, chunk_ids)
    assert emb.shape == (len(chunk_ids), 384) and abs(float((emb[0] ** 2).sum()) - 1) < 1e-3


async def test_a_failed_ingest_leaves_the_previous_index_version_intact(service: RagService) -> None:
    """An ingest that fails at commit time (here: another worker committed index version 1 first) writes nothing:
    documents, chunks, keyword index, history and index versions stay as they were."""
    from dataclasses import replace

    from llmops.core.errors import ConflictError
    from llmops.rag.store import ChunkRow, DocumentWrite, IngestWrite

    await service.create_collection(P, "kb")
    await service.ingest(P, "kb", corpus_inputs())
    store = service.store
    before_docs = store.list_documents(P, "kb")
    before_chunks = store.list_chunks(P, "kb")
    doc = replace(before_docs[0], version=2, content_hash="x" * 64)
    chunk = replace(before_chunks[0], chunk_id="chk_new", document_id=doc.document_id, text="replacement zebra")
    stale = (await service.list_index_versions(P, "kb"))[0]  # version 1 again: the commit must refuse it
    write = IngestWrite(
        P,
        "kb",
        [
            DocumentWrite(
                doc, "replacement zebra", [ChunkRow(chunk, store.get_embeddings(P, [before_chunks[0].chunk_id])[0])]
            )
        ],
        [before_docs[1].document_id],
        stale,
        10**18,
    )
    with pytest.raises(ConflictError):
        store.apply_ingest(write)
    assert store.list_documents(P, "kb") == before_docs
    assert store.list_chunks(P, "kb") == before_chunks
    assert store.keyword_search(P, "kb", "zebra", limit=5) == []
    assert store.keyword_search(P, "kb", "passwords", limit=5)
    assert [v.version for v in store.list_index_versions(P, "kb")] == [1]
    assert len(store.list_versions(P, "kb", before_docs[1].document_id)) == 1
