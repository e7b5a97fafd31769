"""What the RAG service (and corpus health) need from storage. Every method is scoped by ``project_id``.

``CorpusReader`` is the read-only CONTRACT the corpus-health work codes against; ``RagStore`` extends it
with what ingestion and search need. ``SqlRagStore`` (``rag/_sql.py``) implements both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from llmops.rag.models import Chunk, Collection, Document, DocumentVersion, IndexVersion


class CorpusReader(Protocol):
    def list_documents(self, project_id: str, collection: str) -> list[Document]:
        """Live (not deleted) documents of the collection, ordered by ``document_id``."""
        ...

    def list_chunks(
        self, project_id: str, collection: str, *, document_ids: Sequence[str] | None = None
    ) -> list[Chunk]:
        """Chunks of the current versions, ordered by document then position."""
        ...

    def count_chunks(self, project_id: str, collection: str, *, document_ids: Sequence[str]) -> int:
        """How many chunks these documents have (a count: ingest must not read every chunk to know it)."""
        ...

    def get_embeddings(self, project_id: str, chunk_ids: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised, in the order of ``chunk_ids`` (unknown ids raise NotFoundError)."""
        ...

    def retrieval_counts(self, project_id: str, collection: str) -> dict[str, int]:
        """document_id -> times one of its chunks was returned by a search (live documents, zeros included)."""
        ...


@dataclass(frozen=True)
class ChunkRow:
    """A chunk to write, with its embedding (float32, 384)."""

    chunk: Chunk
    embedding: np.ndarray


@dataclass(frozen=True)
class DocumentWrite:
    """A new version of a document (``chunks`` replace the previous version's chunks)."""

    document: Document
    text: str
    chunks: list[ChunkRow]


@dataclass(frozen=True)
class IngestWrite:
    """Everything one ingest changes, applied in ONE transaction (a failure leaves the index intact)."""

    project_id: str
    collection: str
    writes: list[DocumentWrite]
    deletes: list[str]  # document ids
    index_version: IndexVersion
    updated_ns: int


class RagStore(CorpusReader, Protocol):
    def insert_collection(self, project_id: str, collection: Collection, created_ns: int) -> None:
        """ConflictError if the name exists in the project."""
        ...

    def all_collections(self) -> list[tuple[str, str]]:
        """(project_id, collection) of every collection: start-up warm-up only, never tenant-facing."""
        ...

    def find_collection(self, project_id: str, collection: str) -> Collection | None: ...

    def list_collections(self, project_id: str) -> list[Collection]: ...

    def delete_collection(self, project_id: str, collection: str) -> None: ...

    def find_document(self, project_id: str, collection: str, document_id: str) -> Document | None: ...

    def list_versions(self, project_id: str, collection: str, document_id: str) -> list[DocumentVersion]:
        """Newest first (deletions included)."""
        ...

    def chunk_hashes(self, project_id: str, collection: str, document_ids: Sequence[str]) -> dict[str, Chunk]:
        """content_hash -> an existing chunk of those documents (to reuse its id and embedding)."""
        ...

    def apply_ingest(self, write: IngestWrite) -> None: ...

    def list_index_versions(self, project_id: str, collection: str) -> list[IndexVersion]:
        """Newest first."""
        ...

    def all_embeddings(self, project_id: str, collection: str) -> tuple[list[str], np.ndarray, list[str]]:
        """(chunk ids, (n, 384) float32, document ids) of the collection: rebuilds the vector index."""
        ...

    def keyword_search(self, project_id: str, collection: str, query: str, *, limit: int) -> list[tuple[str, float]]:
        """(chunk_id, score) best first; the score is higher-is-better."""
        ...

    def get_chunks(self, project_id: str, chunk_ids: Sequence[str]) -> dict[str, tuple[Chunk, Document]]: ...

    def add_retrievals(self, project_id: str, collection: str, counts: dict[str, int]) -> None:
        """Increment ``retrieval_count`` of documents (document_id -> number of times retrieved)."""
        ...

    @property
    def native_vectors(self) -> bool:
        """True when the database searches vectors itself (PostgreSQL with pgvector): see ``vector_search``."""
        ...

    def vector_search(
        self,
        project_id: str,
        collection: str,
        vector: np.ndarray,
        *,
        limit: int,
        ef_search: int = 192,
        filters: dict[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) best first, metadata ``filters`` applied (only when ``native_vectors``)."""
        ...


def metadata_matches(metadata: dict[str, Any], filters: dict[str, Any]) -> bool:
    """Equality filters on metadata; a list value means "any of"."""
    for key, want in filters.items():
        have = metadata.get(key)
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True
