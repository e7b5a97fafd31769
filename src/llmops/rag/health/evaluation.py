"""Precision / recall of the checks on a labelled corpus directory (``docs/`` + ``labels.json``, the layout of
``examples/corpus``): shared by the benchmark and the tests so that both measure the same thing."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llmops.rag.health.contradictions import (
    ClaimEmbedder,
    Conflict,
    ContradictionConfig,
    ContradictionModel,
    find_contradictions,
)
from llmops.rag.health.corpus import as_doc_texts, load_corpus, parse_date
from llmops.rag.health.hygiene import DocVector, document_vectors, near_duplicates, stale_by_age


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class CorpusReport:
    contradictions: Scores
    subtype_accuracy: float
    duplicates: Scores
    stale: Scores
    claims: int
    candidate_pairs: int
    nli_pairs: int
    seconds: float
    false_positives: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)


def _matches(c: Conflict, label: dict[str, Any]) -> bool:
    if {c.first.document_id, c.second.document_id} != set(label["documents"]):
        return False
    text = c.first.text + " || " + c.second.text
    return all(p in text for p in label["passages"])


def evaluate_corpus(
    root: Path, embed: ClaimEmbedder, nli: ContradictionModel | None, *, config: ContradictionConfig | None = None,
    duplicate_min_cosine: float = 0.92, duplicate_min_similarity: float = 90.0,
) -> CorpusReport:  # fmt: skip
    labels = json.loads((root / "labels.json").read_text())
    files = load_corpus(root / "docs")
    docs = as_doc_texts(files)
    started = time.perf_counter()
    conflicts, stats = find_contradictions(docs, embed, nli, config=config)
    seconds = time.perf_counter() - started
    reported = [c for c in conflicts if not c.needs_adjudication]
    wanted = labels["contradictions"]
    found: set[int] = set()
    contra, right_subtype = Scores(), 0
    report_fp: list[str] = []
    for c in reported:
        hits = [i for i, label in enumerate(wanted) if _matches(c, label)]
        if hits:
            contra.tp += 1
            found.update(hits)
            right_subtype += wanted[hits[0]]["subtype"] == c.subtype
        else:
            contra.fp += 1
            report_fp.append(f"{c.first.document_id}: {c.first.text} || {c.second.document_id}: {c.second.text}")
    contra.fn = len(wanted) - len(found)
    missed = [" / ".join(w["documents"]) + f" ({w['subtype']})" for i, w in enumerate(wanted) if i not in found]
    # near-duplicate documents
    ids = [f.document_id for f in files]
    texts = [f.text for f in files]
    chunk_owner, chunk_texts = [], []
    for d in docs:
        for ch in d.chunks:
            chunk_owner.append(d.document_id)
            chunk_texts.append(ch.text)
    vectors = document_vectors(ids, chunk_owner, embed(chunk_texts))
    pairs = {
        frozenset((p.first, p.second))
        for p in near_duplicates(
            ids, texts, vectors, min_cosine=duplicate_min_cosine, min_similarity=duplicate_min_similarity
        )
    }
    true_dups = {frozenset(p) for p in labels["duplicates"]}
    dups = Scores(len(pairs & true_dups), len(pairs - true_dups), len(true_dups - pairs))
    # stale: by age, plus the older side of "outdated" conflicts (superseded)
    now = parse_date(labels["now"]) or datetime.now().astimezone()
    aged = stale_by_age(
        [DocVector(f.document_id, "", f.effective_date) for f in files],
        now=now,
        stale_after_days=labels["stale_after_days"],
    )
    superseded = {c.evidence["outdated_document_id"] for c in reported if c.subtype == "outdated"}
    stale_found = set(aged) | superseded
    true_stale = set(labels["stale"])
    stale = Scores(len(stale_found & true_stale), len(stale_found - true_stale), len(true_stale - stale_found))
    return CorpusReport(
        contradictions=contra,
        subtype_accuracy=right_subtype / contra.tp if contra.tp else 0.0,
        duplicates=dups,
        stale=stale,
        claims=stats.claims,
        candidate_pairs=stats.candidate_pairs,
        nli_pairs=stats.nli_pairs,
        seconds=seconds,
        false_positives=report_fp,
        missed=missed,
    )
