"""The review/online-rule store and services behave the same on SQLite and on a real PostgreSQL server (same
migrations): configs unique per project, queues with items and counts, labels as scores, the rule cursor
only moving forward, and no project ever seeing another's rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError
from llmops.evals._sql_review import SqlReviewStore
from llmops.evals.evaluators.registry import create_evaluator
from llmops.evals.online import NewRule, OnlineRuleService, OnlineWorker, RuleFilter
from llmops.evals.review import NewScoreConfig, QueueSource, ReviewService, Submission
from llmops.tracing import ScoreFilter, ScoreService, Span, TraceFilter, TraceService
from llmops.tracing._sql import SqlTraceStore
from llmops.tracing._sql_scores import SqlScoreStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "t_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _span(project: str, i: int, start: int) -> Span:
    return Span(
        trace_id=f"{i:032x}",
        span_id=f"{i:016x}",
        project_id=project,
        name="chat m",
        kind="llm",
        start_ns=start,
        end_ns=start + 1000,
        request_model="m",
        output=[{"role": "assistant", "parts": [{"type": "text", "content": f"answer {i}"}]}],
    )


def test_review_and_rules_on_both_databases(engine: Engine) -> None:
    traces_store = SqlTraceStore(engine)
    traces_store.insert_spans([_span("p1", i, 1_000 + i) for i in range(4)] + [_span("p2", 9, 5_000)])
    traces, scores = TraceService(traces_store), ScoreService(SqlScoreStore(engine))
    store = SqlReviewStore(engine)
    review = ReviewService(store, traces, scores)

    async def run() -> None:
        await review.create_config("p1", NewScoreConfig("q", "numeric", 1, 5))
        with pytest.raises(ConflictError):
            await review.create_config("p1", NewScoreConfig("q", "boolean"))
        await review.create_config("p2", NewScoreConfig("q", "boolean"))  # same name, other project
        queue = await review.create_queue("p1", "all", configs=["q"], source=QueueSource(TraceFilter(), limit=10))
        assert queue.counts == {"pending": 4, "done": 0, "skipped": 0}
        with pytest.raises(NotFoundError):
            await review.get_queue("p2", queue.queue_id)
        with pytest.raises(NotFoundError):  # p2 cannot queue p1's trace
            await review.create_queue("p2", "x", configs=["q"], source=QueueSource(trace_ids=(f"{0:032x}",)))
        items = await review.list_items("p1", queue.queue_id)
        done = await review.submit("p1", queue.queue_id, items[0].item_id, Submission({"q": "4"}), reviewer="r")
        assert done.labels == {"q": 4.0} and done.status == "done"
        with pytest.raises(InvalidInputError, match="between 1 and 5"):
            await review.submit("p1", queue.queue_id, items[1].item_id, Submission({"q": 0}), reviewer="r")
        assert (await review.get_queue("p1", queue.queue_id)).counts["done"] == 1
        page = await scores.list_scores("p1", ScoreFilter(name="q", source="human"))
        assert [(s.trace_id, s.value) for s in page.items] == [(items[0].trace_id, 4.0)]

        rules = OnlineRuleService(store, evaluators=lambda spec, _: create_evaluator(spec))
        spec = [{"name": "contains", "value": "answer"}]
        rule = await rules.create_rule("p1", NewRule("r", spec, RuleFilter(model="m"), delay_s=0, start_ns=0))
        assert [r.rule_id for r in await rules.list_rules("p2")] == []
        worker = OnlineWorker(store, traces, scores, lambda spec, _: create_evaluator(spec))
        await worker.run_once()
        assert worker.stats.scored == 4
        after = await rules.get_rule("p1", rule.rule_id)
        assert (after.cursor_ns, after.cursor_trace_id, after.scored) == (1_003, f"{3:032x}", 4)
        store.advance(rule.rule_id, (1, "0"), scored=0, failed=0)  # never moves back
        assert (await rules.get_rule("p1", rule.rule_id)).cursor_ns == 1_003
        assert (await scores.list_scores("p2", ScoreFilter())).items == []

    with ThreadPoolExecutor(1) as pool:  # a thread of its own: Playwright's sync API may hold this thread's loop
        pool.submit(asyncio.run, run()).result(timeout=120)


def test_a_large_backlog_is_scored_oldest_first(engine: Engine) -> None:
    """With 2 traces per poll (a read window of 8), 30 waiting traces are scored two at a time, oldest first,
    none skipped: the window narrows to the oldest traces instead of taking the newest."""
    SqlTraceStore(engine).insert_spans([_span("p1", i, 10_000 + i) for i in range(30)])
    traces, scores = TraceService(SqlTraceStore(engine)), ScoreService(SqlScoreStore(engine))
    store = SqlReviewStore(engine)

    def factory(spec, _):  # type: ignore[no-untyped-def]
        return create_evaluator(spec)

    async def run() -> None:
        rules = OnlineRuleService(store, evaluators=factory)
        spec = [{"name": "contains", "value": "answer"}]
        rule = await rules.create_rule("p1", NewRule("r", spec, delay_s=0, start_ns=0))
        worker = OnlineWorker(store, traces, scores, factory, max_traces_per_poll=2)
        await worker.run_once()
        first = await rules.get_rule("p1", rule.rule_id)
        assert (first.scored, first.cursor_ns) == (2, 10_001)
        for _ in range(14):
            await worker.run_once()
        done = await rules.get_rule("p1", rule.rule_id)
        assert (done.scored, done.cursor_ns) == (30, 10_029)
        scored = (await scores.list_scores("p1", ScoreFilter(name="contains"), limit=100)).items
        assert len({s.trace_id for s in scored}) == 30

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=120)
