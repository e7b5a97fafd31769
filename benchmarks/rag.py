"""RAG benchmarks (figures in docs/benchmarks.md, section "RAG").

1. Ingest: N synthetic ~1-page documents (about 2,800 characters of varied sentences under Markdown headings)
   pushed through ``RagService.ingest`` in batches of 32 (parse, chunk 800/100, embed with the local
   all-MiniLM-L6-v2 int8 ONNX on 2 threads, one transaction per batch on SQLite WAL, index update).
   Baseline in the same run: embedding the very same chunk texts alone (the floor no ingest can beat).
   A re-ingest of the unchanged corpus is timed too (hashing only: nothing re-embedded).
2. Vector search: 100k synthetic 384-dim unit vectors of low intrinsic dimension (a 48-dim gaussian latent
   projected to 384 dims plus noise, as sentence embeddings are), queries are perturbed corpus vectors.
   usearch HNSW (M=16, ef_add=128; ef_search 64..256, default 192) against exact
   search (numpy brute force, one matrix-vector product per query) on the same data: recall@10 of HNSW vs the
   exact top-10, p50/p99 latency of both, single-threaded query loop.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import pct, save  # noqa: E402

from llmops.core.db import create_db_engine, upgrade  # noqa: E402
from llmops.core.settings import RagSettings  # noqa: E402
from llmops.gateway import OnnxEmbedder  # noqa: E402
from llmops.rag._sql import SqlRagStore  # noqa: E402
from llmops.rag.chunking import chunk_document  # noqa: E402
from llmops.rag.index import VectorIndex  # noqa: E402
from llmops.rag.loaders import parse_text  # noqa: E402
from llmops.rag.service import DocumentInput, RagService  # noqa: E402

WORDS = (
    "policy customer refund shipping warehouse invoice contract employee security password server backup "
    "incident report quarter revenue budget supplier order delivery product release feature support ticket "
    "account payment discount region office manager team training compliance audit risk vendor schedule"
).split()


def _page(rng: random.Random, i: int) -> str:
    parts = [f"# Document {i}: {rng.choice(WORDS)} {rng.choice(WORDS)}\n"]
    for s in range(3):
        parts.append(f"\n## Section {s + 1} {rng.choice(WORDS)}\n")
        for _ in range(3):
            sent = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + f" {rng.randint(1, 999)}."
                for _ in range(3)
            ]
            parts.append("\n" + " ".join(sent) + "\n")
    return "".join(parts)


class _TimedEmbedder:
    """The real embedder, with the time spent inside it and the tokens it read counted."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.tokens = 0

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        t = time.perf_counter()
        vectors, tokens = self.inner.embed(texts)
        self.seconds += time.perf_counter() - t
        self.tokens += tokens
        return vectors, tokens


async def _ingest(n_docs: int) -> dict[str, float]:
    rng = random.Random(7)
    docs = [DocumentInput(f"doc-{i}.md", _page(rng, i), "markdown") for i in range(n_docs)]
    embedder = _TimedEmbedder(OnnxEmbedder(threads=2))
    embedder.inner.embed(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        svc = RagService(SqlRagStore(engine), embedder, RagSettings())
        await svc.create_collection("p", "bench")
        t0 = time.perf_counter()
        chunks = 0
        for i in range(0, n_docs, 32):
            res = await svc.ingest("p", "bench", docs[i : i + 32])
            chunks += res.embedded
        ingest_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        for i in range(0, n_docs, 32):
            await svc.ingest("p", "bench", docs[i : i + 32])
        reingest_s = time.perf_counter() - t1
        engine.dispose()
    batches: list[list[str]] = []
    for i in range(0, n_docs, 32):  # the same chunk texts, one embedder call per 32 documents as ingest does
        batches.append([])
        for d in docs[i : i + 32]:
            parsed = parse_text(d.text, "markdown", source=d.document_id)
            for p in chunk_document(parsed, size=800, overlap=100):
                body = parsed.text[p.start : p.end]
                batches[-1].append(f"{p.heading}\n{body}" if p.heading else body)
    t2 = time.perf_counter()
    tokens = sum(embedder.inner.embed(texts)[1] for texts in batches)
    embed_s = time.perf_counter() - t2
    return {
        "documents": n_docs,
        "chunks": sum(len(b) for b in batches),
        "chunks_embedded": chunks,
        "tokens_embedded": tokens,
        "tokens_per_document": tokens / n_docs,
        "ingest_docs_per_s": n_docs / ingest_s,
        "ingest_chunks_per_s": chunks / ingest_s,
        "ingest_tokens_per_s": embedder.tokens / ingest_s,
        "ingest_share_in_embedder": embedder.seconds / ingest_s,
        "embed_only_docs_per_s": n_docs / embed_s,
        "embed_only_tokens_per_s": tokens / embed_s,
        "ingest_over_embed_only_time": ingest_s / embed_s,
        "reingest_unchanged_docs_per_s": n_docs / reingest_s,
        "embedder_graph": embedder.inner.graph,
    }


def _vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """Low intrinsic dimension, like sentence embeddings: a 48-dim latent projected to 384 dims plus noise."""
    latent = rng.standard_normal((n, 48)).astype(np.float32)
    proj = rng.standard_normal((48, 384)).astype(np.float32)
    v = latent @ proj + 0.3 * rng.standard_normal((n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _search(n: int, n_queries: int) -> dict[str, float]:
    rng = np.random.default_rng(11)
    data = _vectors(n, rng)
    q = data[rng.integers(0, n, n_queries)] + 0.05 * rng.standard_normal((n_queries, 384)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    index = VectorIndex()
    ids = [f"c{i}" for i in range(n)]
    t0 = time.perf_counter()
    index.add(ids, data)
    build_s = time.perf_counter() - t0
    exact_ms, truths = [], []
    for qv in q:
        t = time.perf_counter()
        top = np.argpartition(-(data @ qv), 10)[:10]
        exact_ms.append((time.perf_counter() - t) * 1000)
        truths.append({ids[i] for i in top})
    out: dict[str, float] = {"vectors": n, "queries": n_queries, "build_s": build_s}
    out["exact_p50_ms"], out["exact_p99_ms"] = pct(exact_ms, 0.5), pct(exact_ms, 0.99)
    for ef in (64, 128, 160, 192, 256):  # the same graph, searched with a wider or narrower beam
        index.set_expansion_search(ef)
        ann_ms, recalls = [], []
        for qv, truth in zip(q, truths, strict=True):
            t = time.perf_counter()
            hits = index.search(qv, 10)
            ann_ms.append((time.perf_counter() - t) * 1000)
            recalls.append(len(truth & {cid for cid, _ in hits}) / 10)
        out[f"ef{ef}_recall_at_10"] = float(np.mean(recalls))
        out[f"ef{ef}_p50_ms"], out[f"ef{ef}_p99_ms"] = pct(ann_ms, 0.5), pct(ann_ms, 0.99)
        out[f"ef{ef}_speedup_p50_vs_exact"] = out["exact_p50_ms"] / out[f"ef{ef}_p50_ms"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    args, _ = ap.parse_known_args()
    result: dict[str, object] = {}
    if not args.skip_ingest:
        result["ingest"] = asyncio.run(_ingest(args.docs))
    if not args.skip_search:
        result["vector_search"] = _search(args.vectors, args.queries)
    save("rag" if not args.skip_search else "rag_ingest", result)


if __name__ == "__main__":
    main()
