"""Reads of one trace use an index on the trace id, never a scan of the whole project (SQLite).

Found in stop 13: with only the primary key ``(trace_id, span_id)`` and ``(project_id, start_ns)`` on spans,
SQLite's planner (no statistics) chose the project index for "the spans of trace X in project P": every trace
page, every attribute filter (once per candidate trace) and every retention delete read all of the project's
spans. ``ix_spans_project_trace_start`` matches both equality terms, so the planner takes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.core.db import create_db_engine
from llmops.core.db.engine import upgrade
from llmops.tracing._sql import SqlTraceStore, spans, traces
from llmops.tracing._sql_query import query_conditions
from llmops.tracing.models import Span, TraceFilter

P, TRACE = "p1", f"{1:032x}"


def _store(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    engine = create_db_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade(engine)
    batch = [
        Span(f"{t:032x}", f"{s:016x}", f"p{t % 2}", "n", "llm", t * 100 + s, t * 100 + s + 1, attributes={"a": "b"})
        for t in range(200)
        for s in range(10)
    ]
    SqlTraceStore(engine).insert_spans(batch)
    return engine


def _plan(engine: Engine, statement: sa.Executable) -> str:
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return " | ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


def test_trace_keyed_span_reads_use_a_trace_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = _store(tmp_path)
    c = spans.c
    one_trace = (c.project_id == P, c.trace_id == TRACE)
    statements = {
        "span page": sa.select(spans).where(*one_trace).order_by(c.start_ns, c.span_id).limit(5),
        "spans of traces": sa.select(spans).where(c.project_id == P, c.trace_id.in_([TRACE, f"{3:032x}"])),
        "attribute filter": sa.select(traces.c.trace_id)
        .where(
            traces.c.project_id == P,
            *query_conditions("sqlite", P, TraceFilter(attributes=(("a", "b"),)), traces, spans),
        )
        .limit(5),
        "retention delete": spans.delete().where(c.project_id == P, c.trace_id.in_([TRACE])),
    }
    for label, statement in statements.items():
        plan = _plan(engine, statement)
        spans_steps = [step for step in plan.split(" | ") if "spans" in step]
        assert spans_steps, (label, plan)
        for step in spans_steps:
            assert "trace_id=?" in step, f"{label}: {plan}"
    engine.dispose()
