"""RAG data pipeline: collections, loaders and chunking, incremental ingestion, the vector + keyword index,
hybrid retrieval (traced), gateway context injection and retrieval evaluation. Corpus health lives in
``rag/health/`` (its own owner) and reads the corpus through :class:`CorpusReader`.

Imports ``llmops.core``, ``llmops.tracing`` (retrieval spans) and ``llmops.gateway`` (the local embedder and
the ``Retriever`` protocol it implements); only ``app``, ``web`` and ``cli`` import it. Tested on real SQLite
and PostgreSQL with the real embedder (``tests/rag/``).
"""

from llmops.rag.models import Chunk, Collection, Document, DocumentVersion, IndexVersion, SearchHit
from llmops.rag.service import DocumentInput, IngestResult, RagService, TraceParent
from llmops.rag.store import CorpusReader

__all__ = [
    "Chunk",
    "Collection",
    "CorpusReader",
    "Document",
    "DocumentInput",
    "DocumentVersion",
    "IndexVersion",
    "IngestResult",
    "RagService",
    "SearchHit",
    "TraceParent",
]
