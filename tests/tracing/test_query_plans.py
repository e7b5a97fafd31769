"""The store reads and deletes one trace's spans through an index on the trace id, never by scanning the whole
project (SQLite, whose planner has no statistics).

Found in stop 13: with the primary key ``(trace_id, span_id)`` and ``(project_id, start_ns)`` as the spans'
indexes, SQLite chose the project index for "spans of trace T in project P", reading every span of the project
for one trace page, for each candidate trace of an attribute filter, and per retention delete. The store's
queries write that project condition with ``_sql_query.of_project``; this test runs them and checks the plan of
every statement that touches spans.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from llmops.core.db import create_db_engine
from llmops.core.db.engine import upgrade
from llmops.tracing._sql import SqlTraceStore
from llmops.tracing._sql_sessions import SqlSessionStore
from llmops.tracing.models import Span, TraceFilter

P, TRACE = "p1", f"{1:032x}"


def _engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    engine = create_db_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade(engine)
    batch = [
        Span(f"{t:032x}", f"{s:016x}", f"p{t % 2}", "n", "llm", t * 100 + s, t * 100 + s + 1, attributes={"a": "b"})
        for t in range(200)
        for s in range(10)
    ]
    SqlTraceStore(engine).insert_spans(batch)
    return engine


def test_trace_keyed_span_queries_use_the_trace_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(tmp_path)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "spans" in statement and not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    store, sessions = SqlTraceStore(engine), SqlSessionStore(engine)
    assert len(store.list_span_page(P, TRACE, after=None, limit=5)) == 5
    assert len(store.list_spans(P, TRACE)) == 10
    assert len(sessions.spans_of_traces(P, [TRACE, f"{3:032x}"])) == 20
    assert store.list_traces(P, TraceFilter(attributes=(("a", "b"),)), after=None, limit=5)
    assert store.delete_traces_before(P, 400, limit=10) == 2  # traces 1 and 3
    event.remove(engine, "before_cursor_execute", _capture)

    checked = 0
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            for step in plan:
                if " spans " in f"{step} " and "trace_search" not in step:
                    assert "trace_id=?" in step, f"{statement}\n{plan}"
                    checked += 1
    assert checked >= 5
    engine.dispose()
