"""In-process approximate nearest-neighbour index per collection (usearch HNSW, cosine, float32).

Vectors are persisted in the database (``rag_chunks.embedding``); the index is rebuilt from them on first
use in a process and whenever the collection's ``index_version`` moved (another worker ingested), and
updated in place after this process's own ingests. Recall is measured, not assumed: ``benchmarks/rag.py``
compares it with exact (numpy) search.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import onnxruntime  # noqa: F401 - MUST load before usearch: the reverse import order segfaults (usearch 2.26 wheels)
from usearch.index import Index

from llmops.rag.models import EMBEDDING_DIM

EXACT_BELOW = 2048  # tiny collections: brute force is exact and as fast


class VectorIndex:
    """Chunk ids <-> integer keys, and the HNSW graph over their vectors. Thread-safe."""

    def __init__(self, *, connectivity: int = 16, expansion_search: int = 192, version: int = 0) -> None:
        self._index = Index(
            ndim=EMBEDDING_DIM,
            metric="cos",
            dtype="f32",
            connectivity=connectivity,
            expansion_add=128,  # build beam (benchmarks/rag.py measured recall with it)
            expansion_search=expansion_search,
        )
        self._keys: dict[str, int] = {}
        self._ids: dict[int, str] = {}
        self._next = 0
        self._docs: dict[str, str] = {}  # chunk_id -> document_id
        self._lock = threading.Lock()
        self.version = version

    def set_expansion_search(self, ef: int) -> None:
        """HNSW ef at query time (recall vs latency); takes effect on the next search."""
        with self._lock:
            self._index.expansion_search = ef  # type: ignore[misc]  # usearch has a setter; its stub says read-only

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, chunk_ids: Sequence[str], vectors: np.ndarray, *, document_ids: Sequence[str] = ()) -> None:
        if not len(chunk_ids):
            return
        with self._lock:
            self._docs.update(zip(chunk_ids, document_ids, strict=False))
            self._remove_locked([c for c in chunk_ids if c in self._keys])
            keys = np.arange(self._next, self._next + len(chunk_ids), dtype=np.uint64)
            self._next += len(chunk_ids)
            for cid, key in zip(chunk_ids, keys.tolist(), strict=True):
                self._keys[cid], self._ids[key] = key, cid
            self._index.add(keys, np.ascontiguousarray(vectors, dtype=np.float32))

    def remove(self, chunk_ids: Sequence[str]) -> None:
        with self._lock:
            self._remove_locked([c for c in chunk_ids if c in self._keys])

    def remove_documents(self, document_ids: Sequence[str]) -> None:
        wanted = set(document_ids)
        with self._lock:
            self._remove_locked([c for c, d in self._docs.items() if d in wanted and c in self._keys])

    def _remove_locked(self, chunk_ids: list[str]) -> None:
        if not chunk_ids:
            return
        keys = np.array([self._keys.pop(c) for c in chunk_ids], dtype=np.uint64)
        for key in keys.tolist():
            self._docs.pop(self._ids.pop(key, ""), None)
        self._index.remove(keys)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) best first."""
        with self._lock:
            n = len(self._keys)
            if n == 0 or k <= 0:
                return []
            matches = self._index.search(
                np.ascontiguousarray(vector, dtype=np.float32), min(k, n), exact=n < EXACT_BELOW
            )
            keys, dists = matches.keys.tolist(), matches.distances.tolist()
            return [(self._ids[key], 1.0 - float(d)) for key, d in zip(keys, dists, strict=True) if key in self._ids]
