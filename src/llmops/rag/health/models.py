"""Corpus-health data: findings and per-document health. No framework imports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

FindingKind = Literal["contradiction", "duplicate", "stale", "never_retrieved", "negative_feedback"]
FindingStatus = Literal["open", "resolved", "ignored"]
FINDING_KINDS: tuple[FindingKind, ...] = (
    "contradiction", "duplicate", "stale", "never_retrieved", "negative_feedback",
)  # fmt: skip
FINDING_STATUSES: tuple[FindingStatus, ...] = ("open", "resolved", "ignored")


@dataclass(frozen=True)
class Finding:
    finding_id: str
    collection: str
    kind: FindingKind
    subtype: str
    document_ids: tuple[str, ...]
    sources: tuple[str, ...]  # the documents' sources (file name or pushed id), same order
    chunk_ids: tuple[str, ...]
    passages: tuple[str, ...]  # quoted text, one per side (contradiction) or per document
    score: float
    status: FindingStatus = "open"
    evidence: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    created_ns: int = 0
    updated_ns: int = 0


def fingerprint(kind: str, parts: list[tuple[str, str]]) -> str:
    """Identity of a finding across re-checks: its kind and the (document, passage) sides, order-free."""
    body = kind + "\x1f" + "\x1e".join(sorted(f"{d}\x1f{p.strip().lower()}" for d, p in parts))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DocumentHealth:
    document_id: str
    source: str
    score: float  # 0..100, see docs/corpus-health.md
    contradictions: int
    duplicate: bool
    stale: bool
    never_retrieved: bool
    negative_feedback: int
    retrievals: int | None = None


def health_score(
    *, contradictions: int, duplicate: bool, stale: bool, never_retrieved: bool, negative_feedback: int
) -> float:
    """100 minus penalties for OPEN findings (documented in docs/corpus-health.md)."""
    score = 100.0
    score -= 30 * min(2, contradictions)
    score -= 15 if duplicate else 0
    score -= 15 if stale else 0
    score -= 10 if never_retrieved else 0
    score -= 10 * min(2, negative_feedback)
    return max(0.0, score)
