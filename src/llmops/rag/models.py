"""RAG data: collections, documents and their versions, chunks, index versions, search hits.

No framework imports. This module is a CONTRACT shared with the corpus-health work (``rag/health/``):
``Document`` and ``Chunk`` keep their fields; add new fields only with defaults.

Identity: a collection is named per project (``collection`` is its name); a document is identified by
``document_id`` inside its collection (a pushed id, or the file's relative path for ``llmops rag ingest``).
Only the current version's chunks are stored; every version's text stays in the history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

SearchMode = Literal["hybrid", "vector", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "vector", "keyword")
EMBEDDING_DIM = 384


def content_hash(text: str) -> str:
    """SHA-256 hex of the UTF-8 text: the identity of a document's or a chunk's content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Collection:
    collection: str  # its name, unique per project
    description: str = ""
    chunk_size: int = 800  # characters
    chunk_overlap: int = 100  # characters
    embedder: str = "local-embed"
    index_version: int = 0  # the current index version (0: nothing ingested yet)
    documents: int = 0
    chunks: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Document:
    document_id: str
    collection: str
    source: str  # file path/name or pushed id
    title: str
    version: int
    content_hash: str
    metadata: dict[str, Any]
    effective_date: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DocumentVersion:
    """One entry of a document's history (immutable); ``deleted`` marks the removal of the document."""

    document_id: str
    collection: str
    version: int
    source: str
    title: str
    content_hash: str
    text: str
    metadata: dict[str, Any]
    effective_date: datetime | None
    index_version: int
    created_at: datetime
    deleted: bool = False


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    document_id: str
    document_version: int
    position: int
    text: str
    heading: str  # heading path "A > B"
    page: int | None
    start: int  # character offsets into the document text
    end: int
    content_hash: str


@dataclass(frozen=True)
class IndexVersion:
    """One successful ingest into a collection: what changed and how the chunks were built."""

    collection: str
    version: int
    documents: int
    chunks: int
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded: int  # chunks embedded in this ingest
    reused: int  # chunks whose embedding was reused (same content hash)
    chunk_size: int
    chunk_overlap: int
    embedder: str
    created_at: datetime


@dataclass(frozen=True)
class SearchHit:
    chunk: Chunk
    source: str
    title: str
    score: float  # the fused (hybrid) or single-mode score, higher is better
    metadata: dict[str, Any] = field(default_factory=dict)
    vector_score: float | None = None  # cosine similarity
    keyword_score: float | None = None  # bm25-like, higher is better
    rank: int = 0
