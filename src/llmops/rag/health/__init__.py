"""Corpus health: contradictions between documents, near-duplicates, stale and unused documents, and a
per-document health score (issue 6, part 4).

Owns ``rag_findings`` (``rag/_health_sql.py``). Reads the corpus only through ``rag.store.CorpusReader``;
imports ``rag.models``/``rag.store``, ``gateway`` (embedder type, adjudicator calls), ``projects`` and ``core``
— never ``web``, ``cli`` or ``app``. The algorithms (``claims``, ``contradictions``, ``hygiene``) take plain
inputs and are tested directly on the shipped corpus (``examples/corpus``); the service end to end through
the API (``tests/rag_health``).
"""

from llmops.rag.health.contradictions import Adjudicator, ContradictionConfig, DocText, find_contradictions
from llmops.rag.health.models import DocumentHealth, Finding, health_score
from llmops.rag.health.service import CheckResult, FeedbackSource, HealthService
from llmops.rag.health.store import FindingStore

__all__ = [
    "Adjudicator",
    "CheckResult",
    "ContradictionConfig",
    "DocText",
    "DocumentHealth",
    "FeedbackSource",
    "Finding",
    "FindingStore",
    "HealthService",
    "find_contradictions",
    "health_score",
]
