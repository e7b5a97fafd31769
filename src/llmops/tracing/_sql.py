"""SQLAlchemy Core implementation of :class:`TraceStore` for SQLite and PostgreSQL.

Spans are keyed by (trace_id, span_id): a retried batch adds nothing twice. The ``traces`` table is a
per-trace aggregate kept in the same transaction as the spans it summarises.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.tracing.models import Span, TraceFilter, TraceSummary

_meta = sa.MetaData()
traces = sa.Table(
    "traces",
    _meta,
    *(
        sa.Column(name, typ, primary_key=(name == "trace_id"))
        for name, typ in [
            ("trace_id", sa.String),
            ("project_id", sa.String),
            ("name", sa.String),
            ("start_ns", sa.BigInteger),
            ("end_ns", sa.BigInteger),
            ("status", sa.String),
            ("user_id", sa.String),
            ("session_id", sa.String),
            ("model", sa.String),
            ("key_id", sa.String),
            ("input_tokens", sa.BigInteger),
            ("output_tokens", sa.BigInteger),
            ("cost_usd", sa.Float),
            ("span_count", sa.Integer),
        ]
    ),
)
spans = sa.Table(
    "spans",
    _meta,
    sa.Column("trace_id", sa.String, primary_key=True),
    sa.Column("span_id", sa.String, primary_key=True),
    *(
        sa.Column(name, typ)
        for name, typ in [
            ("project_id", sa.String),
            ("parent_span_id", sa.String),
            ("name", sa.String),
            ("kind", sa.String),
            ("start_ns", sa.BigInteger),
            ("end_ns", sa.BigInteger),
            ("status", sa.String),
            ("error", sa.Text),
            ("operation", sa.String),
            ("provider", sa.String),
            ("request_model", sa.String),
            ("response_model", sa.String),
            ("input_tokens", sa.BigInteger),
            ("output_tokens", sa.BigInteger),
            ("cost_usd", sa.Float),
            ("ttft_ms", sa.Float),
            ("user_id", sa.String),
            ("session_id", sa.String),
            ("key_id", sa.String),
            ("attributes", sa.Text),
            ("input", sa.Text),
            ("output", sa.Text),
        ]
    ),
)
_TRACE_FIELDS = [c.name for c in traces.c]
_GROUP_COLUMNS = {"model": spans.c.request_model, "key": spans.c.key_id, "user": spans.c.user_id}


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str).decode()


def _span_row(s: Span) -> dict[str, Any]:
    row = {c.name: getattr(s, c.name) for c in spans.c if c.name not in ("attributes", "input", "output")}
    row["attributes"] = _dumps(s.attributes) or "{}"
    row["input"] = _dumps(s.input)
    row["output"] = _dumps(s.output)
    return row


def _span_from_row(m: Any) -> Span:
    data = dict(m)
    data["attributes"] = orjson.loads(data["attributes"] or "{}")
    data["input"] = orjson.loads(data["input"]) if data["input"] else None
    data["output"] = orjson.loads(data["output"]) if data["output"] else None
    return Span(**data)


def _aggregate(new: list[Span]) -> list[dict[str, Any]]:
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in new:
        by_trace[s.trace_id].append(s)
    rows = []
    for trace_id, group in by_trace.items():
        root = next((s for s in group if s.parent_span_id is None), None) or min(group, key=lambda s: s.start_ns)
        rows.append(
            {
                "trace_id": trace_id,
                "project_id": group[0].project_id,
                "name": root.name,
                "start_ns": min(s.start_ns for s in group),
                "end_ns": max(s.end_ns for s in group),
                "status": "error" if any(s.status == "error" for s in group) else "ok",
                "user_id": next((s.user_id for s in group if s.user_id), None),
                "session_id": next((s.session_id for s in group if s.session_id), None),
                "model": next((s.request_model for s in group if s.request_model), None),
                "key_id": next((s.key_id for s in group if s.key_id), None),
                "input_tokens": sum(s.input_tokens or 0 for s in group),
                "output_tokens": sum(s.output_tokens or 0 for s in group),
                "cost_usd": sum(s.cost_usd or 0.0 for s in group),
                "span_count": len(group),
            }
        )
    return rows


_SPAN_COLS = [c.name for c in spans.c]
_TRACE_UPSERT_SET = """
    start_ns = CASE WHEN traces.start_ns < excluded.start_ns THEN traces.start_ns ELSE excluded.start_ns END,
    end_ns = CASE WHEN traces.end_ns > excluded.end_ns THEN traces.end_ns ELSE excluded.end_ns END,
    status = CASE WHEN traces.status = 'error' THEN traces.status ELSE excluded.status END,
    name = CASE WHEN excluded.start_ns < traces.start_ns THEN excluded.name
                ELSE COALESCE(traces.name, excluded.name) END,
    user_id = COALESCE(traces.user_id, excluded.user_id),
    session_id = COALESCE(traces.session_id, excluded.session_id),
    model = COALESCE(traces.model, excluded.model),
    key_id = COALESCE(traces.key_id, excluded.key_id),
    input_tokens = traces.input_tokens + excluded.input_tokens,
    output_tokens = traces.output_tokens + excluded.output_tokens,
    cost_usd = traces.cost_usd + excluded.cost_usd,
    span_count = traces.span_count + excluded.span_count"""


def _insert_sql(table: str, cols: list[str], mark: str, conflict: str) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}) {conflict}"


class SqlTraceStore:
    """Writes go through the DB-API driver directly (executemany of one prepared statement): SQLAlchemy's
    per-row statement processing cost more CPU than the database itself (see docs/benchmarks.md)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._span_sql = _insert_sql("spans", _SPAN_COLS, mark, "ON CONFLICT (trace_id, span_id) DO NOTHING")
        self._trace_sql = _insert_sql(
            "traces", _TRACE_FIELDS, mark, "ON CONFLICT (trace_id) DO UPDATE SET" + _TRACE_UPSERT_SET
        )
        self._exists_sql = "SELECT trace_id, span_id FROM spans WHERE trace_id IN ({})"
        self._mark = mark

    def insert_spans(self, batch: list[Span]) -> int:
        if not batch:
            return 0
        unique = list({(s.trace_id, s.span_id): s for s in batch}.values())
        with self._engine.begin() as conn:
            existing = self._existing_keys(conn, unique)
            new = [s for s in unique if (s.trace_id, s.span_id) not in existing]
            if not new:
                return 0
            rows = [tuple(r[c] for c in _SPAN_COLS) for r in map(_span_row, new)]
            conn.exec_driver_sql(self._span_sql, rows)
            conn.exec_driver_sql(self._trace_sql, [tuple(r[c] for c in _TRACE_FIELDS) for r in _aggregate(new)])
        return len(new)

    def _existing_keys(self, conn: sa.Connection, batch: list[Span]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        trace_ids = sorted({s.trace_id for s in batch})
        for i in range(0, len(trace_ids), 500):
            chunk = trace_ids[i : i + 500]
            sql = self._exists_sql.format(", ".join([self._mark] * len(chunk)))
            found.update((r[0], r[1]) for r in conn.exec_driver_sql(sql, tuple(chunk)))
        return found

    def list_traces(
        self, project_id: str, flt: TraceFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[TraceSummary]:
        t = traces.c
        q = sa.select(traces).where(t.project_id == project_id)
        conds = [
            (flt.start_ns, lambda v: t.start_ns >= v),
            (flt.end_ns, lambda v: t.start_ns < v),
            (flt.model, lambda v: t.model == v),
            (flt.status, lambda v: t.status == v),
            (flt.user_id, lambda v: t.user_id == v),
            (flt.session_id, lambda v: t.session_id == v),
        ]
        for value, cond in conds:
            if value is not None:
                q = q.where(cond(value))
        if after is not None:
            q = q.where(sa.tuple_(t.start_ns, t.trace_id) < sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        q = q.order_by(t.start_ns.desc(), t.trace_id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [TraceSummary(**r._mapping) for r in conn.execute(q)]

    def find_trace(self, project_id: str, trace_id: str) -> TraceSummary | None:
        q = sa.select(traces).where(traces.c.project_id == project_id, traces.c.trace_id == trace_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return TraceSummary(**row._mapping) if row else None

    def list_spans(self, project_id: str, trace_id: str) -> list[Span]:
        q = (
            sa.select(spans)
            .where(spans.c.project_id == project_id, spans.c.trace_id == trace_id)
            .order_by(spans.c.start_ns, spans.c.span_id)
        )
        with self._engine.connect() as conn:
            return [_span_from_row(r._mapping) for r in conn.execute(q)]

    def llm_span_rows(
        self, project_id: str, start_ns: int, end_ns: int, group_col: str | None
    ) -> list[tuple[int, float, str, int, int, float, str | None]]:
        s = spans.c
        group = _GROUP_COLUMNS[group_col] if group_col else sa.null()
        q = sa.select(
            s.start_ns,
            (s.end_ns - s.start_ns) / 1e6,
            s.status,
            sa.func.coalesce(s.input_tokens, 0),
            sa.func.coalesce(s.output_tokens, 0),
            sa.func.coalesce(s.cost_usd, 0.0),
            group,
        ).where(s.project_id == project_id, s.start_ns >= start_ns, s.start_ns < end_ns, s.operation.is_not(None))
        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]  # type: ignore[misc]
