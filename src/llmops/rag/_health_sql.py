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
        if kind is not None:
            q = q.where(_t.c.kind == kind)
        if status is not None:
            q = q.where(_t.c.status == status)
        with self._engine.connect() as conn:
            rows = conn.execute(q.order_by(_t.c.kind, _t.c.score.desc(), _t.c.finding_id)).all()
        return [_finding(r) for r in rows]

    def get_finding(self, project_id: str, collection: str, finding_id: str) -> Finding:
        q = sa.select(_t).where(
            _t.c.project_id == project_id, _t.c.collection == collection, _t.c.finding_id == finding_id
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
                .where(_t.c.project_id == project_id, _t.c.collection == collection, _t.c.finding_id == finding_id)
                .values(status=status, updated_ns=now_ns)
            )
        if result.rowcount == 0:
            raise NotFoundError(f"finding {finding_id!r} not found in collection {collection!r}")
        return self.get_finding(project_id, collection, finding_id)
