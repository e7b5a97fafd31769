"""Corpus-health benchmark: contradiction-check throughput vs the plain NLI call, precision/recall on the shipped
corpus and its held-out part, and what the background check saves an ingest.

1. Quality: ``evaluate_corpus`` on ``examples/corpus`` (50 documents, 25 planted contradictions, 3 duplicate
   pairs, 9 stale) and ``examples/corpus/heldout`` (written after the heuristics were fixed).
2. Throughput: ``find_contradictions`` (claims, embeddings, candidate pairing, comparators, NLI both ways) on the
   shipped corpus and on a scaled-up corpus (the 50 documents x ``--scale``, ids renamed), in documents/s and
   candidate pairs/s; the baseline in the same run is the plain NLI call (``NliModel.contradiction``, batches of
   16) on the same candidate pairs in both directions — what "ask the model about every candidate" would cost.
   Also reported: all cross-document claim pairs (what an all-pairs check would have to judge).
3. Ingest: the 50 documents pushed through ``RagService.ingest`` in batches of 10 with the incremental check
   inline (the ingest waits, the old behaviour) vs queued to the background worker (the default); wall time of
   the ingest calls, then the time until the background check has drained.

Writes .bench/rag_health.json. Usage: python benchmarks/rag_health.py [--scale 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, ROOT  # noqa: E402

from llmops.classifiers import NliModel  # noqa: E402
from llmops.gateway import OnnxEmbedder  # noqa: E402
from llmops.rag.health.claims import extract_claims  # noqa: E402
from llmops.rag.health.contradictions import DocText, find_contradictions  # noqa: E402
from llmops.rag.health.corpus import as_doc_texts, load_corpus  # noqa: E402
from llmops.rag.health.evaluation import CorpusReport, evaluate_corpus  # noqa: E402

CORPUS = ROOT / "examples" / "corpus"


def quality(report: CorpusReport) -> dict[str, Any]:
    return {
        "contradiction_precision": round(report.contradictions.precision, 3),
        "contradiction_recall": round(report.contradictions.recall, 3),
        "contradictions": {"tp": report.contradictions.tp, "fp": report.contradictions.fp,
                           "fn": report.contradictions.fn},
        "subtype_accuracy": round(report.subtype_accuracy, 3),
        "duplicate_precision": round(report.duplicates.precision, 3),
        "duplicate_recall": round(report.duplicates.recall, 3),
        "stale_precision": round(report.stale.precision, 3),
        "stale_recall": round(report.stale.recall, 3),
        "false_positives": report.false_positives,
        "missed": report.missed,
    }  # fmt: skip


def scaled(docs: list[DocText], scale: int) -> list[DocText]:
    out = list(docs)
    for k in range(1, scale):
        out += [replace(d, document_id=f"copy{k}-{d.document_id}", source=f"copy{k}-{d.source}") for d in docs]
    return out


def all_pairs(docs: list[DocText]) -> int:
    counts = [sum(len(extract_claims(d.document_id, c.chunk_id, c.text)) for c in d.chunks) for d in docs]
    total = sum(counts)
    return (total * total - sum(n * n for n in counts)) // 2


def throughput(docs: list[DocText], embed: Any, nli: NliModel) -> dict[str, Any]:
    started = time.perf_counter()
    conflicts, stats = find_contradictions(docs, embed, nli)
    check_s = time.perf_counter() - started
    # baseline: the plain NLI call on candidate-sized pairs, both directions (the check's own candidates are
    # not exposed, so the claim texts of the reported + NLI-scored pairs are recycled to the same count)
    claims = [c.text for d in docs for ch in d.chunks for c in extract_claims(d.document_id, ch.chunk_id, ch.text)]
    n = max(stats.candidate_pairs, 1)
    pairs = [(claims[i % len(claims)], claims[(i * 7 + 3) % len(claims)]) for i in range(n)]
    both = pairs + [(b, a) for a, b in pairs]
    started = time.perf_counter()
    nli.contradiction(both)
    nli_s = time.perf_counter() - started
    return {
        "documents": stats.documents,
        "claims": stats.claims,
        "all_cross_document_claim_pairs": all_pairs(docs),
        "candidate_pairs": stats.candidate_pairs,
        "nli_pairs": stats.nli_pairs,
        "conflicts": len([c for c in conflicts if not c.needs_adjudication]),
        "check_seconds": round(check_s, 2),
        "docs_per_s": round(stats.documents / check_s, 1),
        "candidate_pairs_per_s": round(stats.candidate_pairs / check_s, 1),
        "baseline_plain_nli_seconds": round(nli_s, 2),
        "baseline_plain_nli_candidate_pairs_per_s": round(n / nli_s, 1),
        "check_vs_plain_nli_ratio": round((stats.candidate_pairs / check_s) / (n / nli_s), 2),
    }


async def ingest_run(background: bool, threads: int) -> dict[str, Any]:
    from llmops.app import attach_rag, attach_rag_health, build_services
    from llmops.core.settings import Settings
    from llmops.rag.service import DocumentInput

    files = load_corpus(CORPUS / "docs")
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home), rag_health={"background": background, "debounce_s": 0.5}, scorers={"threads": threads}
        )
        svc = build_services(settings)
        attach_rag(svc)
        attach_rag_health(svc)
        assert svc.rag is not None and svc.rag_health is not None
        project = svc.projects.list_projects()[0].project_id
        await svc.rag.create_collection(project, "bench")
        docs = [
            DocumentInput(f.document_id, text=f.text, format="markdown", source=f.document_id,
                          effective_date=f.effective_date)
            for f in files
        ]  # fmt: skip
        await svc.rag.search(project, "bench", "warm up", record=False)  # load the embedder
        if svc.rag_health._nli is not None:  # noqa: SLF001 - load the NLI model outside the timing
            await asyncio.to_thread(svc.rag_health._nli.contradiction, [("a", "b")])  # noqa: SLF001
        started = time.perf_counter()
        for i in range(0, len(docs), 10):
            await svc.rag.ingest(project, "bench", docs[i : i + 10])
        ingest_s = time.perf_counter() - started
        if svc.rag_health.background is not None:
            await svc.rag_health.background.drain(timeout_s=600)
            await svc.rag_health.background.stop()
        done_s = time.perf_counter() - started
        found = len(svc.rag_health.list_findings(project, "bench", kind="contradiction"))
        svc.engine.dispose()
    return {
        "ingest_seconds": round(ingest_s, 2),
        "docs_per_s": round(len(docs) / ingest_s, 1),
        "until_findings_seconds": round(done_s, 2),
        "contradiction_findings": found,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args, _ = parser.parse_known_args()
    embedder = OnnxEmbedder(threads=args.threads)

    def embed(texts: list[str]) -> Any:
        return embedder.embed(texts)[0]

    nli = NliModel(threads=args.threads)
    nli.contradiction([("warm", "up")])
    docs = as_doc_texts(load_corpus(CORPUS / "docs"))
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": os.getloadavg()},
    }  # fmt: skip
    stages = [
        ("quality_shipped", lambda: quality(evaluate_corpus(CORPUS, embed, nli))),
        ("throughput_shipped", lambda: throughput(docs, embed, nli)),
        ("ingest_inline", lambda: asyncio.run(ingest_run(False, args.threads))),
        ("ingest_background", lambda: asyncio.run(ingest_run(True, args.threads))),
        ("quality_heldout", lambda: quality(evaluate_corpus(CORPUS / "heldout", embed, nli))),
        (f"throughput_x{args.scale}", lambda: throughput(scaled(docs, args.scale), embed, nli)),
    ]
    RESULTS.mkdir(exist_ok=True)
    for name, stage in stages:  # partial results are written after each stage (a busy machine may be slow)
        result[name] = stage()
        print(name, json.dumps(result[name]), flush=True)
        (RESULTS / "rag_health.json").write_text(json.dumps(result, indent=1))
    inline, bg = result["ingest_inline"], result["ingest_background"]
    result["ingest_speedup_background_vs_inline"] = round(inline["ingest_seconds"] / bg["ingest_seconds"], 2)
    (RESULTS / "rag_health.json").write_text(json.dumps(result, indent=1))
    q = result["quality_shipped"]
    return 0 if q["contradiction_precision"] >= 0.9 and q["contradiction_recall"] >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
