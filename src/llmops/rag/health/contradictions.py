"""Contradictions between documents: claims -> candidate pairs -> verdicts.

Candidates: claims of DIFFERENT documents that are embedding neighbours (top-k cosine on claim embeddings)
and share an entity or at least two attribute words — never all pairs. Each candidate is judged by, in order:

1. subject compatibility: both claims name entities the other lacks ("Team plan" vs "Starter plan"), both
   carry different scope qualifiers, or the aligned token sequences replace a content word before the first
   value ("primary caregivers" vs "secondary caregivers") -> different subjects, not a conflict;
2. the numeric/date/unit comparator: a shared dimension (duration, size, money, percent, count of a unit,
   version of a name, date) whose value sets are disjoint after unit normalisation -> numeric mismatch;
   agreeing values -> consistent (no NLI spent);
3. polarity: negation parity or antonyms ("optional"/"mandatory") differ on the same attribute -> direct;
4. the NLI model in both directions scores every surviving pair (evidence and score; a pair whose only
   evidence is NLI goes to the optional adjudicator, and is dropped without one: the packaged NLI model is
   too weak to decide alone).

Subtypes: ``scope`` when exactly one claim is scoped ("for Enterprise customers"), ``outdated`` when both
documents have effective dates at least ``outdated_min_days`` apart (the older one is the outdated side),
else ``numeric_mismatch`` or ``direct``.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

import numpy as np

from llmops.rag.health.claims import ANTONYMS, NEGATIONS, STOPWORDS, Claim, extract_claims, lemma

Subtype = Literal["direct", "numeric_mismatch", "outdated", "scope"]
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,]*(?:\.\d+)?")
_UNITS = frozenset("second minute hour day week month year business kb mb gb tb pb byte percent am pm usd eur".split())


class ClaimEmbedder(Protocol):
    def __call__(self, texts: list[str]) -> np.ndarray:
        """(n, d) float32 L2-normalised embeddings."""
        ...


class ContradictionModel(Protocol):
    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> list[float]: ...


class Adjudicator(Protocol):
    """Decides uncertain pairs (an LLM through the gateway in production; see app.py)."""

    async def adjudicate(self, first: str, second: str) -> tuple[bool, float, str]:
        """(contradicts, confidence 0..1, short reason)."""
        ...


@dataclass(frozen=True)
class ChunkText:
    chunk_id: str
    text: str


@dataclass(frozen=True)
class DocText:
    document_id: str
    source: str
    effective_date: datetime | None
    chunks: tuple[ChunkText, ...]


@dataclass(frozen=True)
class ContradictionConfig:
    top_k: int = 8
    min_cosine: float = 0.5
    numeric_min_jaccard: float = 0.5
    polarity_min_jaccard: float = 0.55
    nli_min_jaccard: float = 0.6
    nli_threshold: float = 0.9
    outdated_min_days: int = 90


@dataclass
class Conflict:
    first: Claim
    second: Claim
    subtype: Subtype
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)
    needs_adjudication: bool = False


@dataclass
class CheckStats:
    documents: int = 0
    claims: int = 0
    candidate_pairs: int = 0
    nli_pairs: int = 0
    seconds: float = 0.0


def build_claims(docs: Iterable[DocText]) -> list[Claim]:
    """Claims of every chunk, deduplicated per document (overlapping chunks repeat sentences).

    A capitalised first word counts as an entity when the corpus capitalises it mid-sentence elsewhere
    ("Enterprise workspaces ..." names the Enterprise plan seen in "... on the Enterprise plan").
    """
    raw: list[Claim] = []
    for doc in docs:
        seen: set[str] = set()
        for chunk in doc.chunks:
            for claim in extract_claims(doc.document_id, chunk.chunk_id, chunk.text):
                key = claim.text.lower()
                if key not in seen:
                    seen.add(key)
                    raw.append(claim)
    known = set().union(*(c.entities for c in raw)) if raw else set()
    out: list[Claim] = []
    for claim in raw:
        words = _TOKEN.findall(claim.text)
        first = words[0] if words else ""
        extra = {first.lower()} if first[:1].isupper() and first.lower() in known else set()
        out.append(replace(claim, claim_id=len(out), entities=claim.entities | extra))
    return out


def _shares_evidence(a: Claim, b: Claim) -> bool:
    return bool(a.entities & b.entities) or len(a.attribute & b.attribute) >= 2


def candidate_pairs(
    claims: Sequence[Claim], embeddings: np.ndarray, *, changed: set[str] | None, config: ContradictionConfig
) -> list[tuple[int, int, float]]:
    """(i, j, cosine) with i < j: neighbours from different documents sharing entities/attribute words."""
    rows = [c.claim_id for c in claims if changed is None or c.document_id in changed]
    if not rows or len(claims) < 2:
        return []
    k = min(config.top_k + 1, len(claims))
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, len(rows), 512):
        block = rows[start : start + 512]
        sims = embeddings[block] @ embeddings.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, i in enumerate(block):
            for j in top[r]:
                j = int(j)
                cos = float(sims[r, j])
                a, b = claims[i], claims[j]
                if a.document_id == b.document_id or cos < config.min_cosine or not _shares_evidence(a, b):
                    continue
                pairs[(min(i, j), max(i, j))] = cos
    return [(i, j, cos) for (i, j), cos in sorted(pairs.items())]


def _tokens(claim: Claim) -> list[str]:
    return ["#" if t[0].isdigit() else lemma(t) for t in _TOKEN.findall(claim.text)]


def _content(word: str) -> bool:
    return (
        word != "#" and word not in STOPWORDS and word not in ANTONYMS and word not in NEGATIONS
        and word not in _UNITS
    )  # fmt: skip


def _subject_clash(a: Claim, b: Claim) -> bool:
    """A content word replaced by another before the first value (or anywhere when there is no value)."""
    ta, tb = _tokens(a), _tokens(b)
    first_a = ta.index("#") if "#" in ta else len(ta)
    first_b = tb.index("#") if "#" in tb else len(tb)
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op != "replace" or i1 >= first_a or j1 >= first_b:
            continue
        if any(_content(w) for w in ta[i1:i2]) and any(_content(w) for w in tb[j1:j2]):
            return True
    return False


def _polarity_conflict(a: Claim, b: Claim) -> bool:
    sign_a = {c: s * (-1 if a.negated else 1) for c, s in a.concepts}
    sign_b = {c: s * (-1 if b.negated else 1) for c, s in b.concepts}
    shared = set(sign_a) & set(sign_b)
    if shared:
        return any(sign_a[c] != sign_b[c] for c in shared)
    return a.negated != b.negated


def _days_apart(x: datetime | None, y: datetime | None) -> float:
    if x is None or y is None:
        return 0.0
    return abs((x - y).total_seconds()) / 86400


def judge(a: Claim, b: Claim, docs: dict[str, DocText], config: ContradictionConfig) -> Conflict | None:
    """The lexical verdict of one candidate pair (NLI evidence is added by ``find_contradictions``)."""
    if a.text.lower() == b.text.lower():
        return None
    extra_a, extra_b = a.entities - b.entities, b.entities - a.entities
    if extra_a and extra_b:
        return None
    if a.scope and b.scope and a.scope != b.scope:
        return None
    attr_a, attr_b = a.attribute - a.scope - extra_a, b.attribute - b.scope - extra_b
    jaccard = len(attr_a & attr_b) / max(1, len(attr_a | attr_b))
    if _subject_clash(a, b):
        return None
    dims_a, dims_b = a.dimensions, b.dimensions
    shared = set(dims_a) & set(dims_b)
    mismatched = sorted(d for d in shared if not dims_a[d] & dims_b[d])
    scoped = bool(a.scope) != bool(b.scope)
    evidence: dict[str, Any] = {"jaccard": round(jaccard, 3), "entities": sorted(a.entities & b.entities)}
    kind: Subtype
    if mismatched:
        if jaccard < config.numeric_min_jaccard:
            return None
        evidence["mismatch"] = {
            d: [[q.text for q in a.quantities if q.dimension == d], [q.text for q in b.quantities if q.dimension == d]]
            for d in mismatched
        }
        kind = "numeric_mismatch"
        lexical = 1.0
    elif shared:
        return None  # the values agree
    elif _polarity_conflict(a, b):
        if jaccard < config.polarity_min_jaccard:
            return None
        evidence["polarity"] = True
        kind = "direct"
        lexical = 0.9
    elif jaccard >= config.nli_min_jaccard:
        return Conflict(a, b, "direct", 0.0, evidence, needs_adjudication=True)
    else:
        return None
    doc_a, doc_b = docs[a.document_id], docs[b.document_id]
    if scoped:
        kind = "scope"
        evidence["scope"] = sorted(a.scope | b.scope)
    elif _days_apart(doc_a.effective_date, doc_b.effective_date) >= config.outdated_min_days:
        kind = "outdated"
        older = doc_a if doc_a.effective_date < doc_b.effective_date else doc_b  # type: ignore[operator]
        evidence["outdated_document_id"] = older.document_id
    return Conflict(a, b, kind, round(0.5 * lexical + 0.5 * jaccard, 3), evidence)


def find_contradictions(
    docs: Sequence[DocText],
    embed: ClaimEmbedder,
    nli: ContradictionModel | None,
    *,
    changed: set[str] | None = None,
    config: ContradictionConfig | None = None,
) -> tuple[list[Conflict], CheckStats]:
    """Conflicts among ``docs`` (only pairs touching ``changed`` documents when given)."""
    config = config or ContradictionConfig()
    started = time.perf_counter()
    by_id = {d.document_id: d for d in docs}
    claims = build_claims(docs)
    stats = CheckStats(documents=len(docs), claims=len(claims))
    if not claims:
        return [], stats
    embeddings = embed([c.text for c in claims])
    pairs = candidate_pairs(claims, embeddings, changed=changed, config=config)
    stats.candidate_pairs = len(pairs)
    verdicts = [v for i, j, _ in pairs if (v := judge(claims[i], claims[j], by_id, config)) is not None]
    if nli is not None and verdicts:
        forward = nli.contradiction([(v.first.text, v.second.text) for v in verdicts])
        backward = nli.contradiction([(v.second.text, v.first.text) for v in verdicts])
        stats.nli_pairs = 2 * len(verdicts)
        for v, f, r in zip(verdicts, forward, backward, strict=True):
            v.evidence["nli"] = [round(f, 3), round(r, 3)]
            if v.needs_adjudication:  # NLI is the only evidence: confident pairs go to the adjudicator, others out
                v.needs_adjudication = min(f, r) >= config.nli_threshold
                v.score = round(min(f, r), 3) if v.needs_adjudication else 0.0
            else:
                v.score = round(0.8 * v.score + 0.2 * (f + r) / 2, 3)
    out = [v for v in verdicts if v.score > 0 or v.needs_adjudication]
    stats.seconds = time.perf_counter() - started
    return out, stats
