"""SQLAlchemy Core implementation of :class:`FindingStore` (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.core.errors import NotFoundError
from llmops.core.ids import new_id
from llmops.rag.health.models import Finding, FindingStatus
from llmops.rag.health.store import PendingCheck

PENDING = "_pending"  # kind of the one row per collection holding documents awaiting a background check

_meta = sa.MetaData()
findings_table = sa.Table(
    "rag_findings",
    _meta,
    sa.Column("finding_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("collection", sa.String),
    sa.Column("kind", sa.String),
    sa.Column("subtype", sa.String),
    sa.Column("fingerprint", sa.String),
    sa.Column("document_ids", sa.Text),
    sa.Column("sources", sa.Text),
    sa.Column("chunk_ids", sa.Text),
    sa.Column("passages", sa.Text),
    sa.Column("score", sa.Float),
    sa.Column("status", sa.String),
    sa.Column("evidence", sa.Text),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("updated_ns", sa.BigInteger),
)
_t = findings_table


def _row(f: Finding, project_id: str) -> dict[str, Any]:
    return {
        "finding_id": f.finding_id,
        "project_id": project_id,
        "collection": f.collection,
        "kind": f.kind,
        "subtype": f.subtype,
        "fingerprint": f.fingerprint,
        "document_ids": orjson.dumps(list(f.document_ids)).decode(),
        "sources": orjson.dumps(list(f.sources)).decode(),
        "chunk_ids": orjson.dumps(list(f.chunk_ids)).decode(),
        "passages": orjson.dumps(list(f.passages)).decode(),
        "score": f.score,
        "status": f.status,
        "evidence": orjson.dumps(f.evidence).decode(),
        "created_ns": f.created_ns,
        "updated_ns": f.updated_ns,
    }


def _finding(r: Any) -> Finding:
    return Finding(
        finding_id=r.finding_id,
        collection=r.collection,
        kind=r.kind,
        subtype=r.subtype,
        document_ids=tuple(orjson.loads(r.document_ids)),
        sources=tuple(orjson.loads(r.sources)),
        chunk_ids=tuple(orjson.loads(r.chunk_ids)),
        passages=tuple(orjson.loads(r.passages)),
        score=float(r.score),
        status=r.status,
        evidence=orjson.loads(r.evidence),
        fingerprint=r.fingerprint,
        created_ns=int(r.created_ns),
        updated_ns=int(r.updated_ns),
    )


class SqlFindingStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_findings(
        self, project_id: str, collection: str, *, kind: str | None = None, status: str | None = None
    ) -> list[Finding]:
        q = sa.select(_t).where(_t.c.project_id == project_id, _t.c.collection == collection)
        q = q.where(_t.c.kind == kind) if kind is not None else q.where(_t.c.kind != PENDING)
        if status is not None:
            q = q.where(_t.c.status == status)
        with self._engine.connect() as conn:
            rows = conn.execute(q.order_by(_t.c.kind, _t.c.score.desc(), _t.c.finding_id)).all()
        return [_finding(r) for r in rows]

    def get_finding(self, project_id: str, collection: str, finding_id: str) -> Finding:
        q = sa.select(_t).where(
            _t.c.project_id == project_id,
            _t.c.collection == collection,
            _t.c.finding_id == finding_id,
            _t.c.kind != PENDING,
        )
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFoundError(f"finding {finding_id!r} not found in collection {collection!r}")
        return _finding(row)

    def sync_findings(
        self,
        project_id: str,
        collection: str,
        findings: Sequence[Finding],
        *,
        kinds: Sequence[str],
        document_ids: Sequence[str] | None,
        now_ns: int,
    ) -> list[Finding]:
        scope = set(document_ids) if document_ids is not None else None
        base = sa.select(_t).where(
            _t.c.project_id == project_id, _t.c.collection == collection, _t.c.kind.in_(list(kinds))
        )
        stored: list[Finding] = []
        with self._engine.begin() as conn:
            existing = {r.fingerprint: _finding(r) for r in conn.execute(base).all()}
            in_scope = {fp: f for fp, f in existing.items() if scope is None or scope.intersection(f.document_ids)}
            wanted = {f.fingerprint for f in findings}
            stale_ids = [f.finding_id for fp, f in in_scope.items() if fp not in wanted]
            if stale_ids:
                conn.execute(sa.delete(_t).where(_t.c.project_id == project_id, _t.c.finding_id.in_(stale_ids)))
            for f in findings:
                old = existing.get(f.fingerprint)
                if old is None:
                    new = replace(f, finding_id=new_id("fnd"), created_ns=now_ns, updated_ns=now_ns, status="open")
                    conn.execute(sa.insert(_t).values(**_row(new, project_id)))
                else:
                    new = replace(
                        f, finding_id=old.finding_id, status=old.status, created_ns=old.created_ns, updated_ns=now_ns
                    )
                    values = _row(new, project_id)
                    conn.execute(
                        sa.update(_t)
                        .where(_t.c.project_id == project_id, _t.c.finding_id == old.finding_id)
                        .values(**values)
                    )
                stored.append(new)
        return stored

    def set_status(
        self, project_id: str, collection: str, finding_id: str, status: FindingStatus, now_ns: int
    ) -> Finding:
        with self._engine.begin() as conn:
            result = conn.execute(
                sa.update(_t)
                .where(
                    _t.c.project_id == project_id,
                    _t.c.collection == collection,
                    _t.c.finding_id == finding_id,
                    _t.c.kind != PENDING,
                )
                .values(status=status, updated_ns=now_ns)
            )
        if result.rowcount == 0:
            raise NotFoundError(f"finding {finding_id!r} not found in collection {collection!r}")
        return self.get_finding(project_id, collection, finding_id)

    # --- background-check queue (durable: one row per collection, kind ``_pending``) -----------------------------
    def add_pending(
        self, project_id: str, collection: str, document_ids: Sequence[str] | None, *, max_documents: int, now_ns: int
    ) -> PendingCheck:
        where = (_t.c.project_id == project_id, _t.c.collection == collection, _t.c.kind == PENDING)
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(_t).where(*where)).first()
            old = _pending(row) if row is not None else None
            full = document_ids is None or (old is not None and old.document_ids is None)
            ids: set[str] = set() if full else set(document_ids or ()) | set(old.document_ids or () if old else ())
            if len(ids) > max_documents:  # bounded: past the bound the queue holds "check everything"
                full, ids = True, set()
            token = max(now_ns, (old.token + 1) if old else 0)
            values = {
                "document_ids": orjson.dumps(sorted(ids)).decode(),
                "evidence": orjson.dumps({"full": full}).decode(),
                "updated_ns": token,
            }
            if old is None:
                conn.execute(
                    sa.insert(_t).values(
                        finding_id=new_id("fnd"), project_id=project_id, collection=collection, kind=PENDING,
                        subtype="", fingerprint=PENDING, sources="[]", chunk_ids="[]", passages="[]", score=0.0,
                        status="open", created_ns=now_ns, **values,
                    )
                )  # fmt: skip
            else:
                conn.execute(sa.update(_t).where(*where).values(**values))
        since = old.since_ns if old else now_ns
        return PendingCheck(project_id, collection, None if full else tuple(sorted(ids)), token, since)

    def list_pending(self, project_id: str | None = None, collection: str | None = None) -> list[PendingCheck]:
        q = sa.select(_t).where(_t.c.kind == PENDING)
        if project_id is not None:
            q = q.where(_t.c.project_id == project_id)
        if collection is not None:
            q = q.where(_t.c.collection == collection)
        with self._engine.connect() as conn:
            return [_pending(r) for r in conn.execute(q.order_by(_t.c.created_ns)).all()]

    def clear_pending(self, project_id: str, collection: str, token: int) -> bool:
        """Delete the queue row if nothing was added since ``token`` was read (else it stays for the next run)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                sa.delete(_t).where(
                    _t.c.project_id == project_id,
                    _t.c.collection == collection,
                    _t.c.kind == PENDING,
                    _t.c.updated_ns == token,
                )
            )
        return bool(result.rowcount)


def _pending(r: Any) -> PendingCheck:
    full = bool(orjson.loads(r.evidence or "{}").get("full"))
    ids = None if full else tuple(orjson.loads(r.document_ids or "[]"))
    return PendingCheck(r.project_id, r.collection, ids, int(r.updated_ns), int(r.created_ns))


# --- negative feedback on answers that cited a document ---------------------------------------------------------
NEGATIVE_LABELS = frozenset(
    {"down", "thumbs_down", "thumbs-down", "negative", "bad", "wrong", "incorrect", "unhelpful", "no", "false"}
)
FEEDBACK_SOURCES = ("user", "human")  # end-user thumbs and reviewer labels; evaluator scores are not feedback


class SqlFeedbackSource:
    """:class:`~llmops.rag.health.service.FeedbackSource` over the trace store: a trace with a NEGATIVE user or
    reviewer score (boolean false, a number <= 0, or a label such as ``down``/``bad``/``wrong``) whose retrieval
    span in this collection returned a chunk of document D counts one answer against D (once per trace)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def negative_citations(self, project_id: str, collection: str) -> dict[str, int]:
        from llmops.tracing._sql import spans
        from llmops.tracing._sql_query import of_project, scores

        s = scores.c
        negative = sa.or_(
            sa.and_(s.data_type.in_(["boolean", "numeric"]), s.value <= 0),
            sa.and_(s.data_type == "categorical", sa.func.lower(s.string_value).in_(sorted(NEGATIVE_LABELS))),
        )
        bad_traces = sa.select(s.trace_id).where(s.project_id == project_id, s.source.in_(FEEDBACK_SOURCES), negative)
        q = sa.select(spans.c.trace_id, spans.c.attributes).where(
            spans.c.trace_id.in_(bad_traces), of_project(spans.c.project_id, project_id), spans.c.kind == "retrieval"
        )
        cited: dict[str, set[str]] = {}
        with self._engine.connect() as conn:
            for trace_id, raw in conn.execute(q):
                attrs = orjson.loads(raw or "{}")
                if not isinstance(attrs, dict) or attrs.get("llmops.rag.collection") != collection:
                    continue
                try:
                    docs = orjson.loads(attrs.get("retrieval.documents") or "[]")
                except (orjson.JSONDecodeError, TypeError):
                    continue
                for d in docs if isinstance(docs, list) else []:
                    if isinstance(d, dict) and d.get("document_id"):
                        cited.setdefault(str(d["document_id"]), set()).add(trace_id)
        return {d: len(traces) for d, traces in cited.items()}
