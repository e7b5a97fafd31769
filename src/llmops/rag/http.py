"""HTTP adapter for RAG under ``/api/rag``. Every route is scoped to the caller's project (another project's
collection is a 404). Document ids may contain ``/`` (relative file paths)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.core.errors import InvalidInputError
from llmops.rag.evaluation import EvalReport
from llmops.rag.models import Chunk, Collection, Document, DocumentVersion, IndexVersion, SearchHit, SearchMode
from llmops.rag.service import DocumentInput, IngestResult, RagService


class Caller(Protocol):
    @property
    def project_id(self) -> str: ...


Authenticate = Callable[[Request], Awaitable[Caller]]


class CollectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    chunk_size: int | None = Field(None, description="Characters per chunk (default LLMOPS_RAG_CHUNK_SIZE).")
    chunk_overlap: int | None = Field(None, description="Characters shared by consecutive chunks.")


class DocumentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=512, description="Document id, unique in the collection.")
    text: str = ""
    format: Literal["text", "markdown", "html", "pdf"] = "text"
    pages: list[str] | None = Field(None, description="PDF page texts (page numbers are kept per chunk).")
    title: str | None = None
    source: str | None = Field(None, description="File name, URL or system id (default: metadata.source or id).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free metadata, e.g. owner; filterable.")
    effective_date: datetime | None = None


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentBody]
    sync: bool = Field(False, description="Also delete the collection's documents absent from this batch.")


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=10_000)
    k: int | None = Field(None, ge=1)
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    filters: dict[str, Any] = Field(default_factory=dict, description="Metadata equality filters (list: any of).")


def _hybrid() -> list[SearchMode]:
    return ["hybrid"]


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[dict[str, Any]] = Field(description='[{"query": ..., "relevant": [document ids or sources]}]')
    k: int = Field(5, ge=1, le=100)
    modes: list[SearchMode] = Field(default_factory=_hybrid)
    variants: list[dict[str, Any]] = Field(
        default_factory=list, description='In-memory index variants: [{"chunk_size", "chunk_overlap", "mode"}].'
    )


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def collection_json(c: Collection) -> dict[str, Any]:
    return {
        "name": c.collection,
        "description": c.description,
        "chunk_size": c.chunk_size,
        "chunk_overlap": c.chunk_overlap,
        "embedder": c.embedder,
        "index_version": c.index_version,
        "documents": c.documents,
        "chunks": c.chunks,
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
    }


def document_json(d: Document) -> dict[str, Any]:
    return {
        "id": d.document_id,
        "collection": d.collection,
        "source": d.source,
        "title": d.title,
        "version": d.version,
        "content_hash": d.content_hash,
        "metadata": d.metadata,
        "effective_date": _iso(d.effective_date),
        "created_at": _iso(d.created_at),
        "updated_at": _iso(d.updated_at),
    }


def chunk_json(c: Chunk) -> dict[str, Any]:
    return {
        "id": c.chunk_id,
        "document_id": c.document_id,
        "document_version": c.document_version,
        "position": c.position,
        "heading": c.heading,
        "page": c.page,
        "start": c.start,
        "end": c.end,
        "content_hash": c.content_hash,
        "text": c.text,
    }


def version_json(v: DocumentVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "deleted": v.deleted,
        "source": v.source,
        "title": v.title,
        "content_hash": v.content_hash,
        "metadata": v.metadata,
        "effective_date": _iso(v.effective_date),
        "index_version": v.index_version,
        "created_at": _iso(v.created_at),
        "text": v.text,
    }


def index_version_json(v: IndexVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "documents": v.documents,
        "chunks": v.chunks,
        "added": v.added,
        "updated": v.updated,
        "removed": v.removed,
        "unchanged": v.unchanged,
        "embedded": v.embedded,
        "reused": v.reused,
        "chunk_size": v.chunk_size,
        "chunk_overlap": v.chunk_overlap,
        "embedder": v.embedder,
        "created_at": _iso(v.created_at),
    }


def hit_json(h: SearchHit) -> dict[str, Any]:
    return {
        "rank": h.rank,
        "score": h.score,
        "vector_score": h.vector_score,
        "keyword_score": h.keyword_score,
        "source": h.source,
        "title": h.title,
        "metadata": h.metadata,
        "chunk": chunk_json(h.chunk),
    }


def ingest_json(r: IngestResult) -> dict[str, Any]:
    return {
        "collection": r.collection,
        "index_version": r.index_version,
        "added": r.added,
        "updated": r.updated,
        "unchanged": r.unchanged,
        "removed": r.removed,
        "errors": r.errors,
        "chunks": r.chunks,
        "embedded": r.embedded,
        "reused": r.reused,
    }


def report_json(r: EvalReport) -> dict[str, Any]:
    return {
        "name": r.name,
        "k": r.k,
        "mode": r.mode,
        "chunk_size": r.chunk_size,
        "chunk_overlap": r.chunk_overlap,
        "index_version": r.index_version,
        "metrics": r.metrics(),
        "queries": [
            {
                "query": q.query,
                "retrieved": q.retrieved,
                "hit": q.hit,
                "reciprocal_rank": q.reciprocal_rank,
                "ndcg": q.ndcg,
                "precision": q.precision,
                "recall": q.recall,
            }
            for q in r.queries
        ],
    }


def _inputs(body: PushBody) -> list[DocumentInput]:
    return [
        DocumentInput(
            document_id=d.id,
            text=d.text,
            format=d.format,
            pages=d.pages,
            title=d.title,
            source=d.source or (str(d.metadata["source"]) if d.metadata.get("source") else None),
            metadata=d.metadata,
            effective_date=d.effective_date,
        )
        for d in body.documents
    ]


def create_rag_router(service: RagService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api/rag", tags=["rag"])
    _collection_routes(router, service, authenticate)
    _document_routes(router, service, authenticate)
    _search_routes(router, service, authenticate)
    return router


def _collection_routes(router: APIRouter, service: RagService, authenticate: Authenticate) -> None:
    @router.post("/collections", status_code=201, summary="Create a collection (409 if the name exists)")
    async def create_collection(body: CollectionBody, request: Request) -> Response:
        who = await authenticate(request)
        coll = await service.create_collection(
            who.project_id,
            body.name,
            description=body.description,
            chunk_size=body.chunk_size,
            chunk_overlap=body.chunk_overlap,
        )
        return _json(collection_json(coll), 201)

    @router.get("/collections", summary="The project's collections")
    async def list_collections(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [collection_json(c) for c in await service.list_collections(who.project_id)]}

    @router.get("/collections/{collection}", summary="A collection and its index versions (newest first)")
    async def get_collection(collection: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        coll = await service.get_collection(who.project_id, collection)
        versions = await service.list_index_versions(who.project_id, collection)
        return {**collection_json(coll), "index_versions": [index_version_json(v) for v in versions]}

    @router.delete("/collections/{collection}", status_code=204, summary="Delete a collection and its history")
    async def delete_collection(collection: str, request: Request) -> Response:
        who = await authenticate(request)
        await service.delete_collection(who.project_id, collection)
        return Response(status_code=204)


def _document_routes(router: APIRouter, service: RagService, authenticate: Authenticate) -> None:
    @router.post("/{collection}/documents", summary="Push documents (batch); returns what changed")
    async def push(collection: str, body: PushBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return ingest_json(await service.ingest(who.project_id, collection, _inputs(body), sync=body.sync))

    @router.get("/{collection}/documents", summary="Live documents of a collection")
    async def list_documents(collection: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [document_json(d) for d in await service.list_documents(who.project_id, collection)]}

    @router.get("/{collection}/documents/{document_id:path}/versions", summary="A document's history, newest first")
    async def versions(collection: str, document_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        found = await service.list_versions(who.project_id, collection, document_id)
        return {"data": [version_json(v) for v in found]}

    @router.get("/{collection}/documents/{document_id:path}", summary="A document and its current chunks")
    async def get_document(collection: str, document_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        doc, chunks = await service.get_document(who.project_id, collection, document_id)
        return {**document_json(doc), "chunks": [chunk_json(c) for c in chunks]}

    @router.delete("/{collection}/documents/{document_id:path}", summary="Delete a document (history kept)")
    async def delete_document(collection: str, document_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return ingest_json(await service.delete_document(who.project_id, collection, document_id))


def _search_routes(router: APIRouter, service: RagService, authenticate: Authenticate) -> None:
    @router.post("/{collection}/search", summary="Hybrid / vector / keyword search (a traced retrieval span)")
    async def search(collection: str, body: SearchBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        hits = await service.search(
            who.project_id, collection, body.query, k=body.k, mode=body.mode, filters=body.filters
        )
        return {"collection": collection, "query": body.query, "mode": body.mode, "data": [hit_json(h) for h in hits]}

    @router.post("/{collection}/evaluate", summary="Retrieval metrics for labelled queries; variants side by side")
    async def evaluate(collection: str, body: EvaluateBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        if len(body.queries) > 10_000:
            raise InvalidInputError("at most 10000 queries per evaluation", param="queries")
        reports = await service.evaluate(
            who.project_id, collection, body.queries, k=body.k, modes=body.modes, variants=body.variants
        )
        return {"collection": collection, "k": body.k, "reports": [report_json(r) for r in reports]}
