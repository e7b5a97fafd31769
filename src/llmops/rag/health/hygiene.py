"""Near-duplicate documents and chunks, stale documents: cheap checks over embeddings and text.

Duplicates: embedding cosine >= threshold on document vectors (mean of chunk embeddings) or chunk vectors,
confirmed by rapidfuzz text similarity >= threshold (embeddings alone merge paraphrases and versions).
Stale: effective date (else last update) older than ``stale_after_days``; "superseded" documents are the
older side of an ``outdated`` contradiction (added by the service).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from rapidfuzz import fuzz


@dataclass(frozen=True)
class DocVector:
    document_id: str
    text: str
    date: datetime | None  # effective date, else last update


@dataclass(frozen=True)
class DuplicatePair:
    first: str  # document or chunk id
    second: str
    cosine: float
    similarity: float  # rapidfuzz ratio 0..100


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def near_duplicates(
    ids: Sequence[str],
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    owners: Sequence[str] | None = None,
    min_cosine: float = 0.92,
    min_similarity: float = 90.0,
    min_chars: int = 40,
) -> list[DuplicatePair]:
    """Pairs with cosine >= min_cosine and text similarity >= min_similarity (owners differ when given)."""
    if len(ids) < 2:
        return []
    unit = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    out: list[DuplicatePair] = []
    for start in range(0, len(ids), 512):
        sims = unit[start : start + 512] @ unit.T
        rows, cols = np.nonzero(sims >= min_cosine)
        for r, j in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if j <= i or (owners is not None and owners[i] == owners[j]):
                continue
            if min(len(texts[i]), len(texts[j])) < min_chars:
                continue
            similarity = fuzz.ratio(_normalise(texts[i]), _normalise(texts[j]))
            if similarity >= min_similarity:
                out.append(DuplicatePair(ids[i], ids[j], round(float(sims[r, j]), 4), round(similarity, 1)))
    return out


def document_vectors(document_ids: Sequence[str], chunk_owner: Sequence[str], chunk_vectors: np.ndarray) -> np.ndarray:
    """Mean chunk embedding per document (zeros for a document without chunks)."""
    index = {d: i for i, d in enumerate(document_ids)}
    out = np.zeros((len(document_ids), chunk_vectors.shape[1] if chunk_vectors.ndim == 2 else 384), np.float32)
    for owner, vec in zip(chunk_owner, chunk_vectors, strict=True):
        if owner in index:
            out[index[owner]] += vec
    return out


def stale_by_age(docs: Sequence[DocVector], *, now: datetime, stale_after_days: int) -> dict[str, float]:
    """document_id -> age in days, for documents older than the threshold."""
    out: dict[str, float] = {}
    for doc in docs:
        if doc.date is None:
            continue
        age = (now - doc.date).total_seconds() / 86400
        if age > stale_after_days:
            out[doc.document_id] = round(age, 1)
    return out
