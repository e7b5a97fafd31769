"""Corpus-health use cases: check a collection (all of it or the documents that changed), list findings,
resolve / ignore / reopen them, per-document health scores.

Heavy work (claims, embeddings, NLI) runs in a worker thread. The adjudicator (async, through the gateway)
is asked only about pairs whose sole evidence is the NLI model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.core.settings import RagHealthSettings
from llmops.rag.health.contradictions import (
    Adjudicator,
    CheckStats,
    ChunkText,
    ClaimEmbedder,
    Conflict,
    ContradictionConfig,
    ContradictionModel,
    DocText,
    find_contradictions,
)
from llmops.rag.health.hygiene import DocVector, document_vectors, near_duplicates, stale_by_age
from llmops.rag.health.models import FINDING_KINDS, DocumentHealth, Finding, fingerprint, health_score
from llmops.rag.health.store import FindingStore
from llmops.rag.health.worker import BackgroundChecker
from llmops.rag.models import Chunk, Document
from llmops.rag.store import CorpusReader

log = logging.getLogger("llmops.rag.health")
Action = Literal["resolve", "ignore", "reopen"]
_STATUS_OF = {"resolve": "resolved", "ignore": "ignored", "reopen": "open"}
_OTHER_KINDS = [k for k in FINDING_KINDS if k != "contradiction"]


class FeedbackSource(Protocol):
    def negative_citations(self, project_id: str, collection: str) -> dict[str, int]:
        """document_id -> answers citing one of its chunks that received negative feedback."""
        ...


@dataclass
class CheckResult:
    findings: list[Finding]
    stats: CheckStats
    notes: list[str] = field(default_factory=list)


def _date(doc: Document) -> datetime | None:
    d = doc.effective_date or doc.updated_at
    if d is not None and d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d


class HealthService:
    def __init__(
        self,
        reader: CorpusReader,
        store: FindingStore,
        settings: RagHealthSettings,
        *,
        embed: ClaimEmbedder,
        nli: ContradictionModel | None = None,
        clock: Clock | None = None,
        adjudicator: Adjudicator | None = None,
        feedback: FeedbackSource | None = None,
        find_collection: Callable[[str, str], object | None] | None = None,
    ) -> None:
        self._find_collection = find_collection
        self._reader = reader
        self._store = store
        self._settings = settings
        self._embed = embed
        self._nli = nli if settings.use_nli else None
        self._clock = clock or SystemClock()
        self.adjudicator = adjudicator
        self.adjudicator_errors = 0  # calls that failed (the pair stayed unreported)
        self.feedback = feedback
        self._config = ContradictionConfig(
            top_k=settings.top_k, min_cosine=settings.min_cosine, outdated_min_days=settings.outdated_min_days
        )
        self._lock = asyncio.Lock()
        self.background: BackgroundChecker | None = None
        if settings.background:
            self.background = BackgroundChecker(
                self,
                store,
                debounce_s=settings.debounce_s,
                max_pending_documents=settings.max_pending_documents,
                clock=self._clock,
            )

    def require_collection(self, project_id: str, collection: str) -> None:
        """NotFoundError when the collection does not exist in the project (when the lookup is wired)."""
        if self._find_collection is not None and self._find_collection(project_id, collection) is None:
            raise NotFoundError(f"collection {collection!r} not found")

    # --- checks -----------------------------------------------------------------------------------------------
    async def check(
        self, project_id: str, collection: str, *, document_ids: Sequence[str] | None = None
    ) -> CheckResult:
        self.require_collection(project_id, collection)
        async with self._lock:  # one check at a time per process: they are CPU-bound
            docs, chunks = await asyncio.to_thread(self._load, project_id, collection)
            live = {d.document_id for d in docs}
            changed = set(document_ids) if document_ids is not None else None
            conflicts, stats = await asyncio.to_thread(self._contradictions, docs, chunks, changed)
            conflicts = await self._adjudicate(project_id, conflicts)
            by_id = {d.document_id: d for d in docs}
            found = [self._conflict_finding(collection, c, by_id) for c in conflicts]
            scope: list[str] | None = None
            if changed is not None:
                known = {
                    d
                    for f in self._store.list_findings(project_id, collection, kind="contradiction")
                    for d in f.document_ids
                }
                scope = sorted(changed | (known - live))
            now = self._clock.now_ns()
            stored = self._store.sync_findings(
                project_id, collection, found, kinds=["contradiction"], document_ids=scope, now_ns=now
            )
            others, notes = await asyncio.to_thread(self._hygiene, project_id, collection, docs, chunks)
            stored += self._store.sync_findings(
                project_id, collection, others, kinds=_OTHER_KINDS, document_ids=None, now_ns=now
            )
        if changed is not None:
            stored = [f for f in stored if f.kind != "contradiction" or changed.intersection(f.document_ids)]
        return CheckResult(stored, stats, notes)

    async def on_documents_changed(self, project_id: str, collection: str, document_ids: Sequence[str]) -> None:
        """The RAG service's hook after an ingest: queue an incremental check for the background worker (durable
        once this returns), or run it inline when ``background`` is off. Failures are logged, never raised."""
        try:
            if self.background is not None:
                await self.background.schedule(project_id, collection, list(document_ids))
            else:
                await self.check(project_id, collection, document_ids=list(document_ids))
        except Exception:  # a task boundary: ingest must not fail because the health check did
            log.exception("corpus health check failed for collection %r", collection)

    def check_status(self, project_id: str, collection: str) -> dict[str, Any]:
        """State of the background check of ``collection`` (queued / running / idle / error, last run)."""
        self.require_collection(project_id, collection)
        if self.background is None:
            return {"state": "inline", "worker": "off", "queued_documents": 0, "full_check_queued": False,
                    "queued_since_ns": None, "attempts": 0, "last": None}  # fmt: skip
        return self.background.status(project_id, collection)

    def _load(self, project_id: str, collection: str) -> tuple[list[Document], list[Chunk]]:
        return (
            self._reader.list_documents(project_id, collection),
            self._reader.list_chunks(project_id, collection),
        )

    def _contradictions(
        self, docs: list[Document], chunks: list[Chunk], changed: set[str] | None
    ) -> tuple[list[Conflict], CheckStats]:
        by_doc: dict[str, list[ChunkText]] = {}
        for c in chunks:
            by_doc.setdefault(c.document_id, []).append(ChunkText(c.chunk_id, c.text))
        texts = [DocText(d.document_id, d.source, _date(d), tuple(by_doc.get(d.document_id, []))) for d in docs]
        return find_contradictions(texts, self._embed, self._nli, changed=changed, config=self._config)

    async def _adjudicate(self, project_id: str, conflicts: list[Conflict]) -> list[Conflict]:
        out: list[Conflict] = []
        judge = self.adjudicator
        if judge is not None and hasattr(judge, "for_project"):
            judge = judge.for_project(project_id)
        for c in conflicts:
            if not c.needs_adjudication:
                out.append(c)
                continue
            if judge is None:
                continue
            try:
                contradicts, confidence, reason = await judge.adjudicate(c.first.text, c.second.text)
            except Exception as exc:  # an upstream failure leaves the pair unreported, never fails the check
                log.warning("adjudicator failed on a candidate pair: %s", exc)
                self.adjudicator_errors += 1
                continue
            c.evidence["adjudicator"] = {"contradiction": contradicts, "confidence": confidence, "reason": reason}
            if contradicts:
                c.score = round(max(c.score, confidence), 3)
                c.needs_adjudication = False
                out.append(c)
        return out

    def _conflict_finding(self, collection: str, c: Conflict, docs: dict[str, Document]) -> Finding:
        a, b = sorted([c.first, c.second], key=lambda x: x.document_id)
        return Finding(
            finding_id="",
            collection=collection,
            kind="contradiction",
            subtype=c.subtype,
            document_ids=(a.document_id, b.document_id),
            sources=(docs[a.document_id].source, docs[b.document_id].source),
            chunk_ids=(a.chunk_id, b.chunk_id),
            passages=(a.text, b.text),
            score=c.score,
            evidence=c.evidence,
            fingerprint=fingerprint("contradiction", [(a.document_id, a.text), (b.document_id, b.text)]),
        )

    def _hygiene(
        self, project_id: str, collection: str, docs: list[Document], chunks: list[Chunk]
    ) -> tuple[list[Finding], list[str]]:
        s = self._settings
        notes: list[str] = []
        by_id = {d.document_id: d for d in docs}
        out: list[Finding] = []
        vectors = (
            self._reader.get_embeddings(project_id, [c.chunk_id for c in chunks])
            if chunks
            else np.zeros((0, 384), np.float32)
        )
        doc_ids = [d.document_id for d in docs]
        doc_text = {d: "\n".join(c.text for c in chunks if c.document_id == d) for d in doc_ids}
        dvec = document_vectors(doc_ids, [c.document_id for c in chunks], vectors)
        dup_docs = near_duplicates(
            doc_ids, [doc_text[d] for d in doc_ids], dvec,
            min_cosine=s.duplicate_min_cosine, min_similarity=s.duplicate_min_similarity,
        )  # fmt: skip
        dup_pairs = {frozenset((p.first, p.second)) for p in dup_docs}
        for p in dup_docs:
            texts = (doc_text[p.first][:400], doc_text[p.second][:400])
            out.append(
                self._pair_finding(collection, "duplicate", "document", by_id, p.first, p.second, texts, ("", ""), p)
            )
        chunk_by_id = {c.chunk_id: c for c in chunks}
        for p in near_duplicates(
            [c.chunk_id for c in chunks], [c.text for c in chunks], vectors, owners=[c.document_id for c in chunks],
            min_cosine=s.duplicate_min_cosine, min_similarity=s.duplicate_min_similarity,
        ):  # fmt: skip
            ca, cb = chunk_by_id[p.first], chunk_by_id[p.second]
            if frozenset((ca.document_id, cb.document_id)) in dup_pairs:
                continue
            out.append(self._pair_finding(collection, "duplicate", "chunk", by_id, ca.document_id, cb.document_id,
                                          (ca.text, cb.text), (ca.chunk_id, cb.chunk_id), p))  # fmt: skip
        out += self._stale(project_id, collection, docs)
        out += self._usage(project_id, collection, docs, notes)
        return out, notes

    def _pair_finding(
        self, collection: str, kind: Any, subtype: str, docs: dict[str, Document], first: str, second: str,
        passages: tuple[str, str], chunk_ids: tuple[str, str], pair: Any,
    ) -> Finding:  # fmt: skip
        return Finding(
            finding_id="",
            collection=collection,
            kind=kind,
            subtype=subtype,
            document_ids=(first, second),
            sources=(docs[first].source, docs[second].source),
            chunk_ids=chunk_ids,
            passages=passages,
            score=round(pair.similarity / 100, 3),
            evidence={"cosine": pair.cosine, "similarity": pair.similarity},
            fingerprint=fingerprint(f"{kind}:{subtype}", [(first, passages[0]), (second, passages[1])]),
        )

    def _single(
        self, collection: str, kind: Any, subtype: str, doc: Document, score: float, evidence: dict[str, Any]
    ) -> Finding:
        return Finding(
            finding_id="",
            collection=collection,
            kind=kind,
            subtype=subtype,
            document_ids=(doc.document_id,),
            sources=(doc.source,),
            chunk_ids=(),
            passages=(doc.title,),
            score=score,
            evidence=evidence,
            fingerprint=fingerprint(f"{kind}:{subtype}", [(doc.document_id, "")]),
        )

    def _stale(self, project_id: str, collection: str, docs: list[Document]) -> list[Finding]:
        now = datetime.fromtimestamp(self._clock.now_ns() / 1e9, UTC)
        by_id = {d.document_id: d for d in docs}
        aged = stale_by_age(
            [DocVector(d.document_id, "", _date(d)) for d in docs],
            now=now,
            stale_after_days=self._settings.stale_after_days,
        )
        out = [self._single(collection, "stale", "age", by_id[d], 1.0, {"age_days": age}) for d, age in aged.items()]
        superseded: dict[str, list[str]] = {}
        for f in self._store.list_findings(project_id, collection, kind="contradiction"):
            old = f.evidence.get("outdated_document_id")
            if f.subtype == "outdated" and f.status != "ignored" and old in by_id and old not in aged:
                superseded.setdefault(old, []).extend(d for d in f.document_ids if d != old)
        for d, newer in sorted(superseded.items()):
            out.append(
                self._single(collection, "stale", "superseded", by_id[d], 1.0, {"superseded_by": sorted(set(newer))})
            )
        return out

    def _usage(self, project_id: str, collection: str, docs: list[Document], notes: list[str]) -> list[Finding]:
        out: list[Finding] = []
        counts = self._reader.retrieval_counts(project_id, collection)
        if sum(counts.values()) == 0:
            notes.append("no retrievals recorded yet: the never-retrieved check is skipped")
        else:
            out += [self._single(collection, "never_retrieved", "never_retrieved", d, 1.0, {"retrievals": 0})
                    for d in docs if counts.get(d.document_id, 0) == 0]  # fmt: skip
        if self.feedback is None:
            notes.append("no feedback source wired: the negative-feedback check is skipped")
        else:
            by_id = {d.document_id: d for d in docs}
            for d, n in sorted(self.feedback.negative_citations(project_id, collection).items()):
                if n > 0 and d in by_id:
                    out.append(
                        self._single(collection, "negative_feedback", "cited", by_id[d], float(n), {"answers": n})
                    )
        return out

    # --- findings -----------------------------------------------------------------------------------------------
    def list_findings(
        self, project_id: str, collection: str, *, kind: str | None = None, status: str | None = None
    ) -> list[Finding]:
        if kind is not None and kind not in FINDING_KINDS:
            raise InvalidInputError(f"unknown finding kind {kind!r}", param="kind")
        if status is not None and status not in _STATUS_OF.values():
            raise InvalidInputError(f"unknown finding status {status!r}", param="status")
        self.require_collection(project_id, collection)
        return self._store.list_findings(project_id, collection, kind=kind, status=status)

    def set_status(self, project_id: str, collection: str, finding_id: str, action: str) -> Finding:
        if action not in _STATUS_OF:
            raise InvalidInputError(f"unknown action {action!r} (resolve, ignore, reopen)", param="action")
        status: Any = _STATUS_OF[action]
        self.require_collection(project_id, collection)
        return self._store.set_status(project_id, collection, finding_id, status, self._clock.now_ns())

    def chunk_texts(self, project_id: str, collection: str, document_ids: Sequence[str]) -> dict[str, str]:
        """chunk_id -> current text, for the chunks of ``document_ids`` (the UI shows passages in context)."""
        chunks = self._reader.list_chunks(project_id, collection, document_ids=list(document_ids))
        return {c.chunk_id: c.text for c in chunks}

    def health(self, project_id: str, collection: str) -> list[DocumentHealth]:
        """Per-document scores from the OPEN findings of the last check, worst first."""
        self.require_collection(project_id, collection)
        docs = self._reader.list_documents(project_id, collection)
        counts = self._reader.retrieval_counts(project_id, collection)
        open_findings = self._store.list_findings(project_id, collection, status="open")
        out: list[DocumentHealth] = []
        for d in docs:
            mine = [f for f in open_findings if d.document_id in f.document_ids]
            kinds = [f.kind for f in mine]
            neg = sum(int(f.score) for f in mine if f.kind == "negative_feedback")
            values: dict[str, Any] = {
                "contradictions": kinds.count("contradiction"),
                "duplicate": "duplicate" in kinds,
                "stale": "stale" in kinds,
                "never_retrieved": "never_retrieved" in kinds,
                "negative_feedback": neg,
            }
            out.append(
                DocumentHealth(
                    d.document_id, d.source, health_score(**values), retrievals=counts.get(d.document_id), **values
                )
            )
        return sorted(out, key=lambda h: (h.score, h.document_id))
