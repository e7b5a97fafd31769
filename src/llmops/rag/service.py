"""RAG use cases: collections, ingestion with incremental sync, hybrid search (traced), evaluation.

Ingest: parse -> chunk -> reuse the embedding of every chunk whose content hash is already stored in the
collection -> embed the rest (batched, off the event loop) -> ONE transaction writes documents, history,
chunks, keyword index and the new index version. A failure before the commit changes nothing.
Search: vector (usearch in process; pgvector's HNSW index in SQL where the store has it) and keyword
(FTS5 / tsvector) lists fused by reciprocal rank (k=60).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.core.ids import new_id, new_span_id, new_trace_id
from llmops.core.settings import RagSettings
from llmops.rag._sql import SqlRagStore
from llmops.rag.chunking import chunk_document
from llmops.rag.evaluation import EvalReport, MemoryIndex, parse_queries, score_query, search_memory
from llmops.rag.index import VectorIndex
from llmops.rag.loaders import FORMATS, LoadError, ParsedDocument, parse_text
from llmops.rag.models import (
    SEARCH_MODES,
    Chunk,
    Collection,
    Document,
    DocumentVersion,
    IndexVersion,
    SearchHit,
    SearchMode,
    content_hash,
)
from llmops.rag.store import ChunkRow, DocumentWrite, IngestWrite, metadata_matches
from llmops.tracing import Span, SpanRecorder

log = logging.getLogger("llmops.rag")
RRF_K = 60
DocumentsChanged = Callable[[str, str, list[str]], Any]


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]: ...


@dataclass(frozen=True)
class DocumentInput:
    """A document to ingest (pushed by the API or parsed locally by ``llmops rag ingest``)."""

    document_id: str
    text: str = ""
    format: str = "text"
    pages: list[str] | None = None
    title: str | None = None
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    effective_date: datetime | None = None


@dataclass
class IngestResult:
    collection: str
    index_version: int
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    reused: int = 0

    @property
    def changed(self) -> list[str]:
        return self.added + self.updated


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    span_id: str | None
    user_id: str | None = None
    session_id: str | None = None
    key_id: str | None = None


def _rrf(*lists: list[tuple[str, float]]) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranked in lists:
        for rank, (cid, _) in enumerate(ranked):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


class RagService:
    def __init__(
        self,
        store: SqlRagStore,
        embedder: Embedder,
        settings: RagSettings,
        *,
        recorder: SpanRecorder | None = None,
        clock: Clock | None = None,
        on_documents_changed: DocumentsChanged | None = None,
    ) -> None:
        self.store = store
        self.reader = store  # the CorpusReader contract (corpus health reads through it)
        self._embedder = embedder
        self._settings = settings
        self._recorder = recorder
        self._clock = clock or SystemClock()
        self.on_documents_changed = on_documents_changed
        self._indexes: dict[tuple[str, str], VectorIndex] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._build_lock = threading.Lock()

    # --- collections ---------------------------------------------------------------------------------

    async def create_collection(
        self,
        project_id: str,
        name: str,
        *,
        description: str = "",
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
    ) -> Collection:
        if not name or len(name) > 128 or not all(ch.isalnum() or ch in "-_." for ch in name):
            raise InvalidInputError("collection name: 1-128 letters, digits, '-', '_' or '.'", param="name")
        size = chunk_size or self._settings.chunk_size
        overlap = self._settings.chunk_overlap if chunk_overlap is None else chunk_overlap
        if not 16 <= size <= 100_000:
            raise InvalidInputError("chunk_size must be between 16 and 100000 characters", param="chunk_size")
        if not 0 <= overlap < size // 2:
            raise InvalidInputError("chunk_overlap must be >= 0 and below chunk_size / 2", param="chunk_overlap")
        coll = Collection(name, description, size, overlap)
        await asyncio.to_thread(self.store.insert_collection, project_id, coll, self._clock.now_ns())
        return await self.get_collection(project_id, name)

    async def get_collection(self, project_id: str, name: str) -> Collection:
        coll = await asyncio.to_thread(self.store.find_collection, project_id, name)
        if coll is None:
            raise NotFoundError(f"collection {name!r} not found", param="collection")
        return coll

    async def list_collections(self, project_id: str) -> list[Collection]:
        return await asyncio.to_thread(self.store.list_collections, project_id)

    async def delete_collection(self, project_id: str, name: str) -> None:
        await self.get_collection(project_id, name)
        await asyncio.to_thread(self.store.delete_collection, project_id, name)
        self._indexes.pop((project_id, name), None)

    # --- documents -----------------------------------------------------------------------------------

    async def list_documents(self, project_id: str, collection: str) -> list[Document]:
        await self.get_collection(project_id, collection)
        return await asyncio.to_thread(self.store.list_documents, project_id, collection)

    async def get_document(self, project_id: str, collection: str, document_id: str) -> tuple[Document, list[Chunk]]:
        doc = await asyncio.to_thread(self.store.find_document, project_id, collection, document_id)
        if doc is None:
            raise NotFoundError(f"document {document_id!r} not found in collection {collection!r}", param="document_id")
        chunks = await asyncio.to_thread(self.store.list_chunks, project_id, collection, document_ids=[document_id])
        return doc, chunks

    async def list_versions(self, project_id: str, collection: str, document_id: str) -> list[DocumentVersion]:
        versions = await asyncio.to_thread(self.store.list_versions, project_id, collection, document_id)
        if not versions:
            raise NotFoundError(f"document {document_id!r} not found in collection {collection!r}", param="document_id")
        return versions

    async def list_index_versions(self, project_id: str, collection: str) -> list[IndexVersion]:
        await self.get_collection(project_id, collection)
        return await asyncio.to_thread(self.store.list_index_versions, project_id, collection)

    async def delete_document(self, project_id: str, collection: str, document_id: str) -> IngestResult:
        await self.get_document(project_id, collection, document_id)
        return await self.ingest(project_id, collection, [], delete=[document_id])

    # --- ingest --------------------------------------------------------------------------------------

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def ingest(
        self,
        project_id: str,
        collection: str,
        documents: Sequence[DocumentInput],
        *,
        sync: bool = False,
        delete: Sequence[str] = (),
    ) -> IngestResult:
        """Add or update ``documents``; ``sync`` also removes live documents absent from the batch."""
        if len(documents) > self._settings.max_batch_documents:
            raise InvalidInputError(
                f"too many documents in one push: {len(documents)} > {self._settings.max_batch_documents}",
                param="documents",
            )
        seen: set[str] = set()
        for d in documents:
            if d.document_id in seen:
                raise InvalidInputError(f"document {d.document_id!r} appears twice in the batch", param="documents")
            seen.add(d.document_id)
        async with self._lock((project_id, collection)):
            coll = await self.get_collection(project_id, collection)
            result = await asyncio.to_thread(self._ingest_sync, project_id, coll, list(documents), sync, list(delete))
        if self.on_documents_changed is not None and (result.changed or result.removed):
            try:
                out = self.on_documents_changed(project_id, collection, result.changed + result.removed)
                if asyncio.iscoroutine(out):
                    await out
            except Exception:  # a hook must never undo a committed ingest: log, count, continue
                log.exception("on_documents_changed hook failed for collection %r", collection)
        return result

    def _parse(self, d: DocumentInput) -> ParsedDocument:
        if not d.document_id or len(d.document_id) > 512:
            raise LoadError(d.document_id or "(no id)", "document id must be 1-512 characters")
        if d.format not in FORMATS:
            raise LoadError(d.document_id, f"unsupported format {d.format!r} (supported: {', '.join(FORMATS)})")
        size = len(d.text) + sum(len(p) for p in d.pages or [])
        if size > self._settings.max_document_chars:
            raise LoadError(d.document_id, f"too large: {size} characters > {self._settings.max_document_chars}")
        if "\x00" in d.text:
            raise LoadError(d.document_id, "binary content (NUL characters)")
        return parse_text(d.text, d.format, source=d.source or d.document_id, title=d.title, pages=d.pages)  # type: ignore[arg-type]

    def _ingest_sync(
        self, project_id: str, coll: Collection, docs: list[DocumentInput], sync: bool, delete: list[str]
    ) -> IngestResult:
        name = coll.collection
        result = IngestResult(name, coll.index_version)
        now_ns = self._clock.now_ns()
        now = datetime.fromtimestamp(now_ns / 1e9, tz=UTC)
        current = {d.document_id: d for d in self.store.list_documents(project_id, name)}
        writes: list[tuple[Document, ParsedDocument]] = []
        for d in docs:
            try:
                parsed = self._parse(d)
            except LoadError as exc:
                result.errors.append({"document_id": d.document_id, "reason": exc.reason})
                continue
            old = current.get(d.document_id)
            meta = dict(d.metadata)
            doc = Document(
                document_id=d.document_id,
                collection=name,
                source=d.source or str(meta.get("source") or d.document_id),
                title=parsed.title,
                version=1,
                content_hash=content_hash(parsed.text),
                metadata=meta,
                effective_date=d.effective_date,
                created_at=old.created_at if old else now,
                updated_at=now,
            )
            if old is not None and _same(old, doc):
                result.unchanged.append(d.document_id)
                continue
            number = self.store.find_version_number(project_id, name, d.document_id)
            writes.append((replace(doc, version=number + 1), parsed))
            (result.updated if old is not None else result.added).append(d.document_id)
        gone = set(delete) | ({k for k in current if k not in seen_ids(docs)} if sync else set())
        result.removed = sorted(k for k in gone if k in current)
        if not writes and not result.removed:
            return result
        doc_writes = self._build_chunks(project_id, coll, writes, result)
        version = coll.index_version + 1
        live = len(current) + len(result.added) - len(result.removed)
        kept = [k for k in current if k not in gone and k not in {w.document.document_id for w in doc_writes}]
        kept_chunks = self.store.count_chunks(project_id, name, document_ids=kept) if kept else 0
        result.chunks = kept_chunks + sum(len(w.chunks) for w in doc_writes)
        iv = IndexVersion(
            name, version, live, result.chunks, len(result.added), len(result.updated), len(result.removed),
            len(result.unchanged), result.embedded, result.reused, coll.chunk_size, coll.chunk_overlap,
            coll.embedder, now,
        )  # fmt: skip
        self.store.apply_ingest(IngestWrite(project_id, name, doc_writes, result.removed, iv, now_ns))
        result.index_version = version
        self._update_index(project_id, name, version, doc_writes, result.removed)
        return result

    def _build_chunks(
        self, project_id: str, coll: Collection, writes: list[tuple[Document, ParsedDocument]], result: IngestResult
    ) -> list[DocumentWrite]:
        planned: list[tuple[Document, ParsedDocument, list[Chunk]]] = []
        old = self.store.chunk_hashes(project_id, coll.collection, [d.document_id for d, _ in writes])
        for doc, parsed in writes:
            chunks: list[Chunk] = []
            for pos, piece in enumerate(chunk_document(parsed, size=coll.chunk_size, overlap=coll.chunk_overlap)):
                text = parsed.text[piece.start : piece.end]
                h = content_hash(text)
                prev = old.pop(h, None)
                chunk_id = prev.chunk_id if prev is not None and prev.document_id == doc.document_id else new_id("chk")
                chunks.append(
                    Chunk(chunk_id, doc.document_id, doc.version, pos, text, piece.heading, piece.page, piece.start,
                          piece.end, h)
                )  # fmt: skip
            planned.append((doc, parsed, chunks))
        hashes = [c.content_hash for _, _, cs in planned for c in cs]
        known = self.store.embeddings_by_hash(project_id, coll.collection, hashes)
        todo = list(dict.fromkeys(h for h in hashes if h not in known))
        if todo:
            by_hash = {c.content_hash: c for _, _, cs in planned for c in cs}
            # similar lengths batched together: less padding for the embedder (measured in benchmarks/rag.py)
            todo.sort(key=lambda h: len(_embed_text(by_hash[h])))
            vectors, _ = self._embedder.embed([_embed_text(by_hash[h]) for h in todo])
            known.update(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
        result.embedded = len(todo)
        result.reused = len(hashes) - len(todo)
        return [
            DocumentWrite(doc, parsed.text, [ChunkRow(c, known[c.content_hash]) for c in chunks])
            for doc, parsed, chunks in planned
        ]

    def _update_index(
        self,
        project_id: str,
        collection: str,
        version: int,
        writes: list[DocumentWrite],
        removed: list[str],
    ) -> None:
        index = self._indexes.get((project_id, collection))
        if index is None or index.version != version - 1:
            self._indexes.pop((project_id, collection), None)  # rebuilt from the database on next search
            return
        index.remove_documents([w.document.document_id for w in writes] + removed)
        rows = [r for w in writes for r in w.chunks]
        if rows:
            index.add(
                [r.chunk.chunk_id for r in rows],
                np.stack([r.embedding for r in rows]),
                document_ids=[r.chunk.document_id for r in rows],
            )
        index.version = version

    # --- evaluation ----------------------------------------------------------------------------------

    async def evaluate(
        self,
        project_id: str,
        collection: str,
        queries: Sequence[Any],
        *,
        k: int = 5,
        modes: Sequence[str] = ("hybrid",),
        variants: Sequence[dict[str, Any]] = (),
    ) -> list[EvalReport]:
        """Metrics of the current index for each mode, then of each in-memory variant (side by side)."""
        labelled = parse_queries(queries)
        coll = await self.get_collection(project_id, collection)
        reports: list[EvalReport] = []
        for mode in modes:
            report = EvalReport(
                f"index v{coll.index_version} {mode}", k, mode, coll.chunk_size, coll.chunk_overlap, coll.index_version
            )
            for q in labelled:
                hits = await self.search(project_id, collection, q.query, k=k, mode=mode, record=False)  # type: ignore[arg-type]
                report.queries.append(score_query(q, [(h.chunk.document_id, h.source) for h in hits], k))
            reports.append(report)
        for i, variant in enumerate(variants):
            reports.append(await asyncio.to_thread(self._evaluate_variant, project_id, coll, labelled, k, i, variant))
        return reports

    def _evaluate_variant(
        self, project_id: str, coll: Collection, labelled: list[Any], k: int, i: int, variant: dict[str, Any]
    ) -> EvalReport:
        size = int(variant.get("chunk_size") or coll.chunk_size)
        overlap = int(variant.get("chunk_overlap", coll.chunk_overlap))
        mode = str(variant.get("mode") or "hybrid")
        if mode not in SEARCH_MODES or not 16 <= size <= 100_000 or not 0 <= overlap < size // 2:
            raise InvalidInputError(f"variants[{i}]: invalid chunk_size/chunk_overlap/mode", param=f"variants.{i}")
        texts: list[str] = []
        keys: list[tuple[str, str]] = []
        for doc in self.store.list_documents(project_id, coll.collection):
            text = self.store.list_versions(project_id, coll.collection, doc.document_id)[0].text
            parsed = parse_text(text, "markdown", source=doc.source)
            for piece in chunk_document(parsed, size=size, overlap=overlap):
                texts.append(
                    _embed_text(Chunk("", "", 0, 0, text[piece.start : piece.end], piece.heading, None, 0, 0, ""))
                )
                keys.append((doc.document_id, doc.source))
        vectors, _ = self._embedder.embed(texts) if texts else (np.zeros((0, 384), dtype=np.float32), 0)
        index = MemoryIndex(texts, np.asarray(vectors, dtype=np.float32), keys)

        def embed(query: str) -> np.ndarray:
            return np.asarray(self._embedder.embed([query])[0][0], dtype=np.float32)

        name = str(variant.get("name") or f"chunk {size}/{overlap} {mode}")
        report = EvalReport(name, k, mode, size, overlap, None)
        for q in labelled:
            ranked = search_memory(index, embed, q.query, k, mode)
            report.queries.append(score_query(q, [keys[j] for j in ranked], k))
        return report

    # --- search --------------------------------------------------------------------------------------

    def warm_indexes(self) -> int:
        """Build the vector index of every collection from the stored embeddings (start-up, in a thread)."""
        built = 0
        if self.store.native_vectors:  # pgvector searches in the database: nothing to build in process
            return built
        for project_id, name in self.store.all_collections():
            coll = self.store.find_collection(project_id, name)
            if coll is not None and coll.chunks:
                self._index(project_id, coll)
                built += 1
        return built

    def _index(self, project_id: str, coll: Collection) -> VectorIndex:
        key = (project_id, coll.collection)
        with self._build_lock:  # one build per collection at a time (start-up warm-up vs first search)
            return self._index_locked(key, project_id, coll)

    def _index_locked(self, key: tuple[str, str], project_id: str, coll: Collection) -> VectorIndex:
        index = self._indexes.get(key)
        if index is None or index.version != coll.index_version:
            index = VectorIndex(
                connectivity=self._settings.hnsw_connectivity,
                expansion_search=self._settings.hnsw_expansion_search,
                version=coll.index_version,
            )
            ids, vectors, doc_ids = self.store.all_embeddings(project_id, coll.collection)
            index.add(ids, vectors, document_ids=doc_ids)
            self._indexes[key] = index
        return index

    async def search(
        self,
        project_id: str,
        collection: str,
        query: str,
        *,
        k: int | None = None,
        mode: SearchMode = "hybrid",
        filters: dict[str, Any] | None = None,
        parent: TraceParent | None = None,
        record: bool = True,
    ) -> list[SearchHit]:
        k = k or self._settings.default_k
        if not 1 <= k <= self._settings.max_k:
            raise InvalidInputError(f"k must be between 1 and {self._settings.max_k}", param="k")
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(SEARCH_MODES)}", param="mode")
        if not query.strip():
            raise InvalidInputError("query is empty", param="query")
        start_ns = self._clock.now_ns()
        coll = await self.get_collection(project_id, collection)
        hits = await asyncio.to_thread(self._search_sync, project_id, coll, query, k, mode, filters or {})
        if record:
            await asyncio.to_thread(self.store.add_retrievals, project_id, collection, _doc_counts(hits))
            self._record_span(project_id, collection, query, k, mode, hits, start_ns, parent)
        return hits

    def _search_sync(
        self, project_id: str, coll: Collection, query: str, k: int, mode: SearchMode, filters: dict[str, Any]
    ) -> list[SearchHit]:
        fetch = k * 10 if filters else k * 4
        vector: list[tuple[str, float]] = []
        keyword: list[tuple[str, float]] = []
        if mode in ("hybrid", "vector"):
            qv, _ = self._embedder.embed([query])
            vector = self._vector_search(project_id, coll, np.asarray(qv[0], dtype=np.float32), max(fetch, 50), filters)
        if mode in ("hybrid", "keyword"):
            keyword = self.store.keyword_search(project_id, coll.collection, query, limit=max(fetch, 50))
        scores = _rrf(vector, keyword) if mode == "hybrid" else dict(vector or keyword)
        vs, ks = dict(vector), dict(keyword)
        ranked = sorted(scores, key=lambda cid: -scores[cid])
        found = self.store.get_chunks(project_id, ranked[: max(fetch, 50)])
        hits: list[SearchHit] = []
        for cid in ranked:
            if cid not in found:
                continue
            chunk, doc = found[cid]
            if filters and not metadata_matches({**doc.metadata, "source": doc.source}, filters):
                continue
            hits.append(
                SearchHit(
                    chunk, doc.source, doc.title, scores[cid], doc.metadata, vs.get(cid), ks.get(cid), len(hits) + 1
                )
            )
            if len(hits) == k:
                break
        return hits

    def _vector_search(
        self, project_id: str, coll: Collection, vector: np.ndarray, limit: int, filters: dict[str, Any]
    ) -> list[tuple[str, float]]:
        if self.store.native_vectors:  # pgvector: the metadata filters apply inside the HNSW scan
            ef = self._settings.hnsw_expansion_search
            return self.store.vector_search(
                project_id, coll.collection, vector, limit=limit, ef_search=ef, filters=filters
            )
        return self._index(project_id, coll).search(vector, limit)

    def _record_span(
        self,
        project_id: str,
        collection: str,
        query: str,
        k: int,
        mode: str,
        hits: list[SearchHit],
        start_ns: int,
        parent: TraceParent | None,
    ) -> None:
        if self._recorder is None:
            return
        docs = [
            {"id": h.chunk.chunk_id, "document_id": h.chunk.document_id, "source": h.source, "score": round(h.score, 6),
             "content": h.chunk.text[:2000]}
            for h in hits
        ]  # fmt: skip
        attrs: dict[str, Any] = {
            "openinference.span.kind": "RETRIEVER",
            "input.value": query,
            "llmops.rag.collection": collection,
            "llmops.rag.k": k,
            "llmops.rag.mode": mode,
            "retrieval.documents": orjson.dumps(docs).decode(),
            "retrieval.chunk_ids": [h.chunk.chunk_id for h in hits],
            "retrieval.document_sources": [h.source for h in hits],
            "retrieval.scores": [h.score for h in hits],
        }
        self._recorder.record(
            Span(
                trace_id=parent.trace_id if parent else new_trace_id(),
                span_id=new_span_id(),
                parent_span_id=parent.span_id if parent else None,
                project_id=project_id,
                name=f"retrieval {collection}",
                kind="retrieval",
                start_ns=start_ns,
                end_ns=max(self._clock.now_ns(), start_ns),
                operation="retrieval",
                user_id=parent.user_id if parent else None,
                session_id=parent.session_id if parent else None,
                key_id=parent.key_id if parent else None,
                attributes=attrs,
                input=query,
                output=docs,
            )
        )


def seen_ids(docs: Sequence[DocumentInput]) -> set[str]:
    return {d.document_id for d in docs}


def _same(old: Document, new: Document) -> bool:
    return (
        old.content_hash == new.content_hash
        and old.metadata == new.metadata
        and old.source == new.source
        and old.title == new.title
        and old.effective_date == new.effective_date
    )


def _embed_text(chunk: Chunk) -> str:
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def _doc_counts(hits: list[SearchHit]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for h in hits:
        counts[h.chunk.document_id] = counts.get(h.chunk.document_id, 0) + 1
    return counts


__all__ = ["DocumentInput", "IngestResult", "RagService", "TraceParent"]
