"""Retrieval evaluation: labelled queries -> hit rate, MRR, nDCG@k, context precision and recall.

A query is ``{"query": str, "relevant": [document ids or sources]}``. Metrics are computed over the ranked
DISTINCT documents of the top-k chunks (several chunks of one document count once), except context
precision, which is the share of the k retrieved chunks that belong to a relevant document.

Variants (``chunk_size`` / ``chunk_overlap`` / ``mode``) let one compare index configurations side by side:
a variant with its own chunking is built in memory from the documents' current text (re-parsed as Markdown,
so PDF page boundaries are not kept), embedded with the same embedder, searched exactly (numpy) and by an
in-memory BM25 for keywords, fused by the same reciprocal-rank rule.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmops.core.errors import InvalidInputError

_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: frozenset[str]


@dataclass
class QueryResult:
    query: str
    retrieved: list[str]  # distinct document ids, ranked
    hit: bool
    reciprocal_rank: float
    ndcg: float
    precision: float
    recall: float


@dataclass
class EvalReport:
    name: str
    k: int
    mode: str
    chunk_size: int
    chunk_overlap: int
    index_version: int | None
    queries: list[QueryResult] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        n = max(1, len(self.queries))
        return {
            "hit_rate": sum(q.hit for q in self.queries) / n,
            "mrr": sum(q.reciprocal_rank for q in self.queries) / n,
            "ndcg": sum(q.ndcg for q in self.queries) / n,
            "context_precision": sum(q.precision for q in self.queries) / n,
            "context_recall": sum(q.recall for q in self.queries) / n,
        }


def parse_queries(rows: Sequence[Any]) -> list[LabelledQuery]:
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("query"), str) or not row["query"].strip():
            raise InvalidInputError(f"queries[{i}] needs a non-empty 'query' string", param=f"queries.{i}.query")
        rel = row.get("relevant")
        if not isinstance(rel, list) or not rel or not all(isinstance(r, str) for r in rel):
            raise InvalidInputError(
                f"queries[{i}] needs 'relevant': a non-empty list of document ids or sources",
                param=f"queries.{i}.relevant",
            )
        out.append(LabelledQuery(row["query"], frozenset(rel)))
    if not out:
        raise InvalidInputError("no queries to evaluate", param="queries")
    return out


def score_query(
    q: LabelledQuery, ranked_chunks: list[tuple[str, str]], k: int, *, relevant_docs: int | None = None
) -> QueryResult:
    """``ranked_chunks``: (document_id, source) of the top-k chunks, best first."""

    def is_rel(doc: tuple[str, str]) -> bool:
        return doc[0] in q.relevant or doc[1] in q.relevant

    chunks = ranked_chunks[:k]
    docs: list[tuple[str, str]] = list(dict.fromkeys(chunks))
    rels = [is_rel(d) for d in docs]
    first = next((i for i, r in enumerate(rels) if r), None)
    n_rel = relevant_docs or len(q.relevant)
    dcg = sum(1 / math.log2(i + 2) for i, r in enumerate(rels) if r)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(n_rel, k)))
    return QueryResult(
        query=q.query,
        retrieved=[d[0] for d in docs],
        hit=first is not None,
        reciprocal_rank=0.0 if first is None else 1 / (first + 1),
        ndcg=dcg / idcg if idcg else 0.0,
        precision=sum(is_rel(c) for c in chunks) / len(chunks) if chunks else 0.0,
        recall=min(1.0, sum(rels) / n_rel) if n_rel else 0.0,
    )


class MemoryIndex:
    """Exact vector search + BM25 over chunks held in memory (evaluation variants only)."""

    def __init__(self, texts: list[str], vectors: np.ndarray, keys: list[tuple[str, str]]) -> None:
        self.keys = keys
        self._vectors = vectors
        self._docs = [Counter(t.lower() for t in _TOKEN.findall(text)) for text in texts]
        self._lens = np.array([sum(d.values()) for d in self._docs], dtype=np.float64)
        self._avg = float(self._lens.mean()) if len(self._lens) else 1.0
        df: Counter[str] = Counter()
        for d in self._docs:
            df.update(d.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def vector(self, qv: np.ndarray, k: int) -> list[tuple[int, float]]:
        if not len(self.keys):
            return []
        sims = self._vectors @ qv
        top = np.argsort(-sims)[:k]
        return [(int(i), float(sims[i])) for i in top]

    def keyword(self, query: str, k: int, k1: float = 1.2, b: float = 0.75) -> list[tuple[int, float]]:
        terms = set(t.lower() for t in _TOKEN.findall(query))
        scores = []
        for i, d in enumerate(self._docs):
            s = 0.0
            for t in terms:
                tf = d.get(t, 0)
                if tf:
                    s += self._idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * self._lens[i] / self._avg))
            if s > 0:
                scores.append((i, s))
        return sorted(scores, key=lambda x: -x[1])[:k]


def fuse(lists: Sequence[list[tuple[int, float]]], rrf_k: int = 60) -> list[int]:
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, (i, _) in enumerate(ranked):
            fused[i] = fused.get(i, 0.0) + 1 / (rrf_k + rank + 1)
    return sorted(fused, key=lambda i: -fused[i])


def search_memory(index: MemoryIndex, embed: Callable[[str], np.ndarray], query: str, k: int, mode: str) -> list[int]:
    lists = []
    if mode in ("hybrid", "vector"):
        lists.append(index.vector(embed(query), k * 4))
    if mode in ("hybrid", "keyword"):
        lists.append(index.keyword(query, k * 4))
    return fuse(lists)[:k]
