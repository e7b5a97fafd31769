"""Response caches: exact-cache hit through the gateway, semantic lookup at 100k entries.

1. Exact hit end to end (HTTP, one `llmops serve` process, SQLite; Redis too when redis-server is installed):
   interleaved at concurrency 1 by a raw keep-alive socket client (benchmarks/_rawhttp.py), the same request sent
   (a) straight to the upstream, (b) through the gateway as a
   cache hit, (c) through the gateway with `x-llmops-cache: no-cache` (the normal proxied path). p50/p99 of each
   and the ratios hit/direct and hit/proxied.
2. Semantic lookup at 100,000 cached entries of one route: the in-process usearch HNSW index (what the gateway
   uses) vs exact brute force with numpy over the same unit vectors; p50/p99 per query, recall@1 of HNSW against
   brute force per ef; then the whole lookup a user waits for (``SemanticCache.find``: embed the question with the
   local MiniLM embedder, search, guard, thread hop) for paraphrases (hits), meaning changes (refused) and unseen
   questions (misses), with the embedding and the guard alone for reference.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import LLMOPS, PY, free_port, optional_redis, pct, process, save, serve_env  # noqa: E402
from _rawhttp import RawClient  # noqa: E402

KEY = "sk-llmops-benchmark-key-0000000000000000"
BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5, "temperature": 0}'


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(values, 0.5), 4), "p99_ms": round(pct(values, 0.99), 4)}


def exact_hit(n: int, redis_url: str | None) -> dict[str, object]:
    up_port, gw_port = free_port(), free_port()
    home = Path(tempfile.mkdtemp())
    dep = {"provider": "openai", "base_url": f"http://127.0.0.1:{up_port}/v1", "model": "bench"}
    cfg = {"models": [{"name": "bench", "deployments": [dep], "cache": {"exact": {"enabled": True}}}]}
    (home / "llmops.yaml").write_text(yaml.safe_dump(cfg))
    env = serve_env(home, gw_port, KEY, **({"LLMOPS_REDIS_URL": redis_url} if redis_url else {}))
    direct = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    gateway = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    runs: dict[str, list[float]] = {"direct": [], "hit": [], "proxied": []}
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    with (
        process([PY, str(Path(__file__).parent / "_upstream.py"), str(up_port)], ready_url=direct.rsplit("/v1", 1)[0]),
        process([LLMOPS, "serve"], env=env, ready_url=f"http://127.0.0.1:{gw_port}/healthz"),
    ):
        # a raw keep-alive socket client (benchmarks/_rawhttp.py): httpx's own cost is about the target itself
        plans = []
        for name, url, extra in (
            ("direct", direct, {}),
            ("hit", gateway, {}),
            ("proxied", gateway, {"x-llmops-cache": "no-cache"}),
        ):
            client = RawClient(url, headers)
            plans.append((name, client, client.request_bytes(BODY, extra)))
        clock = time.perf_counter
        for i in range(200 + n):
            for name, client, request in plans:
                t = clock()
                status, answer_headers, body = client.send(request)
                elapsed = (clock() - t) * 1000
                assert status == 200, body
                if name == "hit" and i > 0:
                    assert answer_headers["x-llmops-cache"] == "hit", answer_headers
                if i >= 200:
                    runs[name].append(elapsed)
    out: dict[str, object] = {k: _stats(v) for k, v in runs.items()}
    out["hit_over_direct_p50"] = round(pct(runs["hit"], 0.5) / pct(runs["direct"], 0.5), 3)
    out["hit_over_proxied_p50"] = round(pct(runs["hit"], 0.5) / pct(runs["proxied"], 0.5), 3)
    out["requests_each"] = n
    return out


def _pairs() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(paraphrase pairs, meaning-change pairs) of the labelled set shipped with llmops."""
    from llmops.gateway.semantic_cache import load_pairs

    pairs = load_pairs()
    return [(p["a"], p["b"]) for p in pairs if p["same"]], [(p["a"], p["b"]) for p in pairs if not p["same"]]


class _NoStore:
    """The semantic store's interface with nothing behind it: the benchmark fills the in-memory index directly."""

    def load(self, project_id: str, alias: str, now_ns: int) -> list[dict[str, object]]:
        return []

    def add(self, entry: dict[str, object]) -> None:
        return None

    def purge(self, project_id: str) -> int:
        return 0

    def count(self, project_id: str, now_ns: int) -> dict[str, int]:
        return {}


def semantic_lookup(entries: int, queries: int) -> dict[str, object]:
    """Index alone (HNSW vs brute force, per ef), then the whole lookup a user waits for at ``entries`` entries."""
    from llmops.gateway.semantic_cache import DIMENSIONS, ContextIndex, _Entry

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((entries, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ContextIndex()
    t = time.perf_counter()
    index.add_many(vectors, [_Entry(f"q{i}", {}, None, 2**62) for i in range(entries)])
    build_s = time.perf_counter() - t
    # queries near stored entries, as a cache hit candidate is: entry + noise (cosine ~0.96 to it), renormalised
    picks = rng.integers(0, entries, queries)
    qs = vectors[picks] + 0.015 * rng.standard_normal((queries, DIMENSIONS)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    brute, best = [], []
    for q in qs:
        t = time.perf_counter()
        best.append(int(np.argmax(vectors @ q)))
        brute.append((time.perf_counter() - t) * 1000)
    default_ef = index.index.expansion_search
    by_ef: dict[str, object] = {}
    for ef in sorted({32, 64, 128, default_ef}):
        index.index.expansion_search = ef  # type: ignore[misc]  # usearch has a setter; its stub says read-only
        hnsw, agree = [], 0
        for q, b in zip(qs, best, strict=True):
            t = time.perf_counter()
            found = index.nearest(q, 4, 0)
            hnsw.append((time.perf_counter() - t) * 1000)
            agree += bool(found) and found[0][0].question == f"q{b}"
        by_ef[f"ef_{ef}"] = {**_stats(hnsw), "recall_at_1": round(agree / queries, 4)}
        by_ef[f"ef_{ef}_over_brute_p50"] = round(pct(hnsw, 0.5) / pct(brute, 0.5), 3)
    index.index.expansion_search = default_ef  # type: ignore[misc]
    return {
        "entries": entries,
        "queries": queries,
        "build_s": round(build_s, 2),
        "index": {"connectivity": index.index.connectivity, "dtype": str(index.index.dtype), "ef_default": default_ef},
        "hnsw": by_ef,
        "brute_force_numpy": _stats(brute),
        "end_to_end": _end_to_end(index),
    }


def _end_to_end(index: object) -> dict[str, object]:
    """``SemanticCache.find`` as the gateway calls it (thread hop included), the index holding the random entries
    plus the first question of every labelled pair: a paraphrase asks the second question (a hit unless the
    guard or the threshold says no), a meaning change asks its second question (must miss), an unseen question
    has no near entry (plain: no numbers, dates or names, so the lookup embeds and searches; with a number no stored
    question has: a certain miss, stopped before embedding). Each question is asked once (no recent-vector
    reuse); ``embedded`` counts the lookups that ran the embedder."""
    import asyncio

    from llmops.gateway.config import CacheConfig
    from llmops.gateway.providers.embed import OnnxEmbedder
    from llmops.gateway.semantic_cache import SemanticCache, _Entry, guard, signature, split_request

    embedder = OnnxEmbedder(threads=1)
    embedder.embed(["warm up"])
    embedded = [0]

    def embed(texts: list[str]) -> np.ndarray:
        embedded[0] += 1
        return embedder.embed(texts)[0]

    cache = SemanticCache(_NoStore(), embed)
    config = CacheConfig.model_validate({"semantic": {"enabled": True}})
    same, different = _pairs()
    for entry in index.entries.values():  # type: ignore[attr-defined]
        entry.question = "a stored question"  # "q17" would read as the number 17 to the guard
    index.signatures = {signature("a stored question")}  # type: ignore[attr-defined]
    stored = [a for a, _ in same + different]
    index.add_many(embedder.embed(stored)[0], [_Entry(q, {"answer": q}, None, 2**62) for q in stored])  # type: ignore[attr-defined]
    body = {"model": "bench", "messages": [{"role": "user", "content": "x"}]}
    context = split_request(body)[0]  # type: ignore[index]
    cache._route("p", "bench", 0)[context] = index  # type: ignore[assignment]

    def ask(q: str) -> dict[str, object]:
        return {**body, "messages": [{"role": "user", "content": f"{q}"}]}

    verbs = "clean fix paint sell insure charge cool replace unlock restart".split()
    nouns = "bike kitchen laptop garden roof phone fridge boiler printer keyboard sofa window".split()
    plain = [f"how should i {v} an old {n} at home?" for v in verbs for n in nouns]  # no numbers, dates, names
    unseen = [f"What is the boiling point of compound number {i} at sea level?" for i in range(len(same))]
    out: dict[str, object] = {}
    embed_ms, guard_ms = [], []

    async def run() -> None:
        sets = (("paraphrase", [b for _, b in same]), ("meaning_change", [b for _, b in different]),
                ("unseen_plain", plain), ("unseen_with_number", unseen))  # fmt: skip
        for name, questions in sets:
            times, hits = [], 0
            embedded[0] = 0
            for q in questions:
                cache._recent.clear()  # a new question: the lookup embeds it (unless it is a certain miss)
                t = time.perf_counter()
                found = await cache.find("p", "bench", ask(q), config, 1)
                times.append((time.perf_counter() - t) * 1000)
                hits += found is not None
            out[name] = {**_stats(times), "questions": len(questions), "hits": hits, "embedded": embedded[0]}
        for q in unseen[:100]:
            t = time.perf_counter()
            embedder.embed([q])
            embed_ms.append((time.perf_counter() - t) * 1000)
        for a, b in same + different:
            t = time.perf_counter()
            guard(a, b)
            guard_ms.append((time.perf_counter() - t) * 1000)

    asyncio.run(run())
    out["embed_one_question"] = _stats(embed_ms)
    out["guard_one_pair"] = _stats(guard_ms)
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    n = 300 if quick else 2000
    result: dict[str, object] = {}
    if "--semantic-only" not in sys.argv:
        result["exact_sqlite"] = exact_hit(n, None)
        with optional_redis() as url:
            if url:
                result["exact_redis"] = exact_hit(n, url)
    if "--exact-only" not in sys.argv:
        result["semantic"] = semantic_lookup(20_000 if quick else 100_000, 300 if quick else 2000)
    name = {"--semantic-only": "cache_semantic", "--exact-only": "cache_exact"}
    save(next((v for k, v in name.items() if k in sys.argv), "cache"), result)
    print(result)


if __name__ == "__main__":
    main()
