"""Span pages of big traces and retention, on SQLite and a real PostgreSQL (store contract), plus the retention
job in a running server and a 10,000-span trace through the API."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from llmops.core.clock import Clock
from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.tracing import Span, TraceService
from llmops.tracing._sql import SqlTraceStore
from llmops.tracing._sql_scores import SqlScoreStore
from llmops.tracing._sql_settings import SqlTraceSettingsStore
from llmops.tracing.models import RedactionPolicy, TraceSettings
from llmops.tracing.privacy import TraceSettingsService
from llmops.tracing.retention import DAY_NS, RetentionJob
from llmops.tracing.scores import Score
from tests.conftest import RunningServer
from tests.support import otlp


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "r_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _span(trace: int, span: int, start: int, project: str = "p1", **kw: object) -> Span:
    return Span(
        trace_id=f"{trace:032x}",
        span_id=f"{span:016x}",
        project_id=project,
        name="op",
        kind="tool",
        start_ns=start,
        end_ns=start + 10,
        **kw,  # type: ignore[arg-type]
    )


class FixedClock(Clock):
    def __init__(self, now_ns: int) -> None:
        self.now = now_ns

    def now_ns(self) -> int:
        return self.now


def test_span_pages_follow_start_order_with_ties(engine: Engine) -> None:
    """Pages of a trace's spans come in (start_ns, span_id) order; ties on start_ns are split by span id;
    every span is visited once; other projects' spans never appear."""
    store = SqlTraceStore(engine)
    store.insert_spans([_span(1, i, 100 + i // 4) for i in range(1, 23)] + [_span(1, 99, 1, project="p2")])
    service = TraceService(store)
    seen, cursor = [], None
    while True:
        page = asyncio_run(service.list_spans("p1", f"{1:032x}", cursor=cursor, limit=5))
        seen += [(s.start_ns, s.span_id) for s in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen) and len(seen) == 22 and len(set(seen)) == 22
    with pytest.raises(InvalidInputError):
        asyncio_run(service.list_spans("p1", f"{1:032x}", cursor="bogus", limit=5))
    with pytest.raises(NotFoundError):
        asyncio_run(service.list_spans("p1", f"{7:032x}", cursor=None, limit=5))


def asyncio_run(coro):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(coro)


def test_delete_traces_before_removes_whole_old_traces_only(engine: Engine) -> None:
    """Retention deletes traces that started before the cutoff with their spans, search rows and scores; newer
    traces and other projects are untouched; ``limit`` bounds one transaction."""
    store = SqlTraceStore(engine)
    old = [
        _span(t, s, 1_000 + t, input=[{"role": "user", "parts": [{"type": "text", "content": "old words"}]}])
        for t in range(1, 6)
        for s in (1, 2)
    ]
    store.insert_spans([*old, _span(50, 1, 5_000), _span(60, 1, 10, project="p2")])
    SqlScoreStore(engine).insert_score(
        Score("sc_1", "p1", f"{1:032x}", None, "thumbs", "boolean", 1.0, None, None, "user", None, 1)
    )
    assert store.delete_traces_before("p1", 2_000, limit=3) == 3
    assert store.delete_traces_before("p1", 2_000, limit=3) == 2
    assert store.delete_traces_before("p1", 2_000, limit=3) == 0
    assert all(
        store.find_trace("p1", f"{t:032x}") is None and not store.list_spans("p1", f"{t:032x}") for t in range(1, 6)
    )
    assert store.find_trace("p1", f"{50:032x}") is not None and store.find_trace("p2", f"{60:032x}") is not None
    assert SqlScoreStore(engine).find_score("p1", "sc_1") is None
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM trace_search").scalar_one() == 0


def test_settings_store_round_trip(engine: Engine) -> None:
    store = SqlTraceSettingsStore(engine)
    assert store.find_settings("p1") is None
    s = TraceSettings("p1", RedactionPolicy(emails=True, custom_patterns=(r"\d+",)), 14, 5)
    store.save_settings(s)
    assert store.find_settings("p1") == s
    store.save_settings(TraceSettings("p1", RedactionPolicy(), None, 6))
    assert store.find_settings("p1") == TraceSettings("p1", RedactionPolicy(), None, 6)


def test_retention_job_uses_each_projects_ttl(engine: Engine) -> None:
    """p1 keeps the default (30 days), p2 keeps 1 day, p3 keeps forever (0): one run deletes exactly the
    traces older than each project's TTL."""
    now = 100 * DAY_NS
    store = SqlTraceStore(engine)
    settings_store = SqlTraceSettingsStore(engine)
    settings_store.save_settings(TraceSettings("p2", retention_days=1))
    settings_store.save_settings(TraceSettings("p3", retention_days=0))
    ages = {1: 40, 2: 10, 3: 0}  # trace -> age in days
    store.insert_spans(
        [_span(t + 10 * p, 1, now - age * DAY_NS - 1, project=f"p{p}") for p in (1, 2, 3) for t, age in ages.items()]
    )
    service = TraceSettingsService(settings_store, default_retention_days=30)
    job = RetentionJob(store, service, lambda: ["p1", "p2", "p3"], interval_s=3600, batch_size=1, clock=FixedClock(now))
    assert job.run_once() == 3
    kept = {(p, t) for p in (1, 2, 3) for t in ages if store.find_trace(f"p{p}", f"{t + 10 * p:032x}")}
    assert kept == {(1, 2), (1, 3), (2, 3), (3, 1), (3, 2), (3, 3)}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(starts=st.lists(st.integers(0, 5), min_size=1, max_size=40), limit=st.integers(1, 7))
def test_span_cursor_pages_partition_the_trace(tmp_path_factory, starts: list[int], limit: int) -> None:  # type: ignore[no-untyped-def]
    """Property: for any start times (many ties) and page size, the pages are disjoint, ordered and complete."""
    eng = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('pages') / 'p.db'}")
    upgrade(eng)
    service = TraceService(SqlTraceStore(eng))
    SqlTraceStore(eng).insert_spans([_span(3, i + 1, s) for i, s in enumerate(starts)])
    seen, cursor = [], None
    while True:
        page = asyncio_run(service.list_spans("p1", f"{3:032x}", cursor=cursor, limit=limit))
        assert len(page.items) <= limit
        seen += [(s.start_ns, s.span_id) for s in page.items]
        if not (cursor := page.next_cursor):
            break
    assert seen == sorted({(s, f"{i + 1:016x}") for i, s in enumerate(starts)})
    eng.dispose()


def test_retention_runs_in_the_background_of_a_server(server_factory: Callable[..., RunningServer]) -> None:
    """The app's retention task deletes expired traces on its own, and only those: a project that keeps
    traces forever keeps them until its TTL is lowered."""
    srv = server_factory(tracing={"retention_interval_s": 0.2, "retention_days": 30})
    old_tid, new_tid = otlp.new_ids()[0], otlp.new_ids()[0]
    old_start = time.time_ns() - 40 * DAY_NS
    with srv.client() as c:
        assert c.put("/api/project/settings", json={"retention_days": 0}).status_code == 200
        spans = [otlp.span(old_tid, otlp.new_ids()[1], start=old_start), otlp.span(new_tid, otlp.new_ids()[1])]
        assert otlp.post(c, otlp.request(spans)).status_code == 200
        runs = srv.services.retention.stats.runs
        _poll(lambda: srv.services.retention.stats.runs >= runs + 2)
        assert c.get(f"/api/traces/{old_tid}").status_code == 200  # kept forever so far
        assert c.put("/api/project/settings", json={"retention_days": 35}).status_code == 200
        _poll(lambda: c.get(f"/api/traces/{old_tid}").status_code == 404)
        assert c.get(f"/api/traces/{new_tid}").status_code == 200
        assert c.get("/readyz").json()["retention"]["deleted_traces"] == 1


def _poll(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_10k_span_trace_pages_through_the_api(server: RunningServer) -> None:
    """A 10,000-span trace ingests; GET /api/traces/{id} returns the first 500 spans as a tree with
    ``spans_truncated`` and a cursor (fast: generous bound here, measured in benchmarks/ingest.py);
    /spans pages visit every span exactly once in start order."""
    tid, root = otlp.new_ids()
    t0 = time.time_ns()
    all_ids = [root] + [otlp.new_ids()[1] for _ in range(9_999)]
    with server.client() as c:
        for b in range(0, 10_000, 1_000):
            batch = [
                otlp.span(tid, sid, f"step {b + i}", start=t0 + b + i, parent=None if sid == root else root)
                for i, sid in enumerate(all_ids[b : b + 1_000])
            ]
            assert otlp.post(c, otlp.request(batch)).status_code == 200
        c.get(f"/api/traces/{tid}")  # warm the connection
        started = time.perf_counter()
        detail = c.get(f"/api/traces/{tid}").json()
        elapsed = time.perf_counter() - started
        assert detail["span_count"] == 10_000 and detail["spans_truncated"] is True
        (tree_root,) = detail["spans"]
        assert tree_root["span_id"] == root and len(tree_root["children"]) == 499
        assert elapsed < 2.0, f"first page took {elapsed:.3f}s"
        seen: list[str] = [tree_root["span_id"], *(ch["span_id"] for ch in tree_root["children"])]
        cursor = detail["spans_next_cursor"]
        while cursor:
            page = c.get(f"/api/traces/{tid}/spans", params={"cursor": cursor, "limit": 1000}).json()
            seen += [s["span_id"] for s in page["data"]]
            cursor = page["next_cursor"]
        # the web page shows one page of spans at a time (never the whole 10,000) and links the next page
        html = c.get(f"/traces/{tid}").text
        assert "Showing 1000 of 10000 spans" in html and "step 999<" in html and "step 1000<" not in html
        next_link = re.search(r'href="\?cursor=([^"]+)" rel="next"', html)
        assert next_link is not None
        page2 = c.get(f"/traces/{tid}?cursor={next_link.group(1)}").text
        assert "step 1000<" in page2 and "step 999<" not in page2
        assert c.get(f"/traces/{tid}?cursor=not-a-cursor").status_code == 404
    assert seen == all_ids
