"""Scores, trace queries (attributes, scores, tags, ranges, full text), sessions and users behave the same on
SQLite and on a real PostgreSQL server (same migrations), and never cross projects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.tracing import MetricsQuery, NewScore, ScoreCondition, ScoreFilter, Span, TraceFilter, TraceService
from llmops.tracing._sql import SqlTraceStore
from llmops.tracing._sql_scores import SqlScoreStore
from llmops.tracing._sql_sessions import SqlSessionStore
from llmops.tracing.scores import ScoreService
from llmops.tracing.sessions import SessionService


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "f_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


class FixedClock:
    def __init__(self) -> None:
        self.ns = 1_000

    def now_ns(self) -> int:
        self.ns += 1_000
        return self.ns

    def monotonic(self) -> float:
        return self.ns / 1e9


def _tid(i: int) -> str:
    return f"{i:032x}"


def _sid(i: int) -> str:
    return f"{i:016x}"


def _span(trace: int, span: int = 1, start: int = 1_000, **kw) -> Span:  # type: ignore[no-untyped-def]
    base = dict(
        project_id="p1",
        name="chat local",
        kind="llm",
        start_ns=start,
        end_ns=start + 5_000_000,
        operation="chat",
        request_model="local",
        input_tokens=3,
        output_tokens=2,
        cost_usd=0.5,
    )
    base.update(kw)
    return Span(trace_id=_tid(trace), span_id=_sid(span), **base)  # type: ignore[arg-type]


def _chat(user: str, answer: str) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    inp = [{"role": "user", "parts": [{"type": "text", "content": user}]}]
    out = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
    return inp, out


def _ids(store: SqlTraceStore, project: str = "p1", **kw) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.trace_id for t in store.list_traces(project, TraceFilter(**kw), after=None, limit=100)]


async def test_scores_are_idempotent_per_project_and_scoped(engine: Engine) -> None:
    """Same idempotency key -> the same score, stored once; the key is unique per project, not globally;
    scores need an existing trace/span of the caller's project; get/delete of another project's id is 404."""
    SqlTraceStore(engine).insert_spans([_span(1), _span(2, project_id="p2")])
    service = ScoreService(SqlScoreStore(engine), clock=FixedClock())
    first, created = await service.create_score("p1", NewScore(_tid(1), "thumbs", True, idempotency_key="k"))
    again, created_again = await service.create_score("p1", NewScore(_tid(1), "thumbs", False, idempotency_key="k"))
    assert created and not created_again and again == first and first.value == 1.0
    other, created_other = await service.create_score("p2", NewScore(_tid(2), "thumbs", True, idempotency_key="k"))
    assert created_other and other.score_id != first.score_id
    with pytest.raises(NotFoundError):
        await service.create_score("p1", NewScore(_tid(2), "thumbs", True))  # p2's trace
    with pytest.raises(NotFoundError):
        await service.create_score("p1", NewScore(_tid(1), "thumbs", True, span_id=_sid(9)))
    span_score, _ = await service.create_score("p1", NewScore(_tid(1), "label", "good", span_id=_sid(1)))
    assert (span_score.data_type, span_score.string_value) == ("categorical", "good")
    with pytest.raises(NotFoundError):
        await service.get_score("p1", other.score_id)
    with pytest.raises(NotFoundError):
        await service.delete_score("p1", other.score_id)
    assert (await service.get_score("p2", other.score_id)) == other
    await service.delete_score("p1", first.score_id)
    with pytest.raises(NotFoundError):
        await service.get_score("p1", first.score_id)


@pytest.mark.parametrize(
    ("value", "data_type"),
    [(float("nan"), None), ("x" * 201, None), ("maybe", "boolean"), ("high", "numeric"), (True, "numeric")],
)
async def test_invalid_score_values_are_refused(engine: Engine, value: object, data_type: str | None) -> None:
    """Non-finite numbers, over-long labels and values that do not fit the declared type are 400s."""
    SqlTraceStore(engine).insert_spans([_span(1)])
    service = ScoreService(SqlScoreStore(engine))
    with pytest.raises(InvalidInputError):
        await service.create_score("p1", NewScore(_tid(1), "n", value, data_type=data_type))  # type: ignore[arg-type]


async def test_score_list_filters_and_cursor(engine: Engine) -> None:
    """Listing filters by trace, name and source and pages newest first, visiting every score once."""
    SqlTraceStore(engine).insert_spans([_span(1), _span(2)])
    service = ScoreService(SqlScoreStore(engine), clock=FixedClock())
    for i in range(7):
        await service.create_score("p1", NewScore(_tid(1 + i % 2), f"n{i % 3}", i, source="code" if i else "human"))
    seen, cursor = [], None
    while True:
        page = await service.list_scores("p1", ScoreFilter(), cursor=cursor, limit=3)
        seen += [s.value for s in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    assert [s.value for s in (await service.list_scores("p1", ScoreFilter(trace_id=_tid(2)))).items] == [5.0, 3.0, 1.0]
    assert [s.value for s in (await service.list_scores("p1", ScoreFilter(name="n0"))).items] == [6.0, 3.0, 0.0]
    assert [s.value for s in (await service.list_scores("p1", ScoreFilter(source="human"))).items] == [0.0]
    assert (await service.list_scores("p2", ScoreFilter())).items == []
    with pytest.raises(InvalidInputError):
        await service.list_scores("p1", ScoreFilter(), cursor="bm9wZQ==")


async def test_score_metrics_mean_per_name_per_bucket(engine: Engine) -> None:
    """Mean of numeric and boolean scores per name and bucket; labels are left out; other projects too."""
    SqlTraceStore(engine).insert_spans([_span(1), _span(2, project_id="p2")])
    clock = FixedClock()
    service = ScoreService(SqlScoreStore(engine), clock=clock)
    for value in (1.0, 0.0, 0.5):
        await service.create_score("p1", NewScore(_tid(1), "q", value))
    await service.create_score("p1", NewScore(_tid(1), "label", "good"))
    await service.create_score("p2", NewScore(_tid(2), "q", 100.0))
    m = await service.metrics("p1", 0, 10**9, 1)
    assert [(n["name"], n["count"], n["mean"]) for n in m["names"]] == [("q", 3, pytest.approx(0.5))]  # type: ignore[index]


def test_attribute_filters_match_dotted_keys_and_types(engine: Engine) -> None:
    """attr filters match a span attribute by key (dots and spaces in keys), comparing strings, numbers and
    booleans as text; a trace matches when any of its spans does."""
    store = SqlTraceStore(engine)
    attrs = {"gen_ai.request.temperature": 0.2, "app.flag": True, "odd key.x": "v", "n": 3}
    store.insert_spans([_span(1, 1), _span(1, 2, parent_span_id=_sid(1), attributes=attrs), _span(2)])
    assert _ids(store, attributes=(("gen_ai.request.temperature", "0.2"),)) == [_tid(1)]
    assert _ids(store, attributes=(("app.flag", "true"),)) == [_tid(1)]
    assert _ids(store, attributes=(("odd key.x", "v"), ("n", "3"))) == [_tid(1)]
    assert _ids(store, attributes=(("n", "4"),)) == []
    assert _ids(store, attributes=(("gen_ai", "0.2"),)) == []  # a prefix is not a key
    assert _ids(store, "p2", attributes=(("n", "3"),)) == []


async def test_score_tag_range_and_text_filters(engine: Engine) -> None:
    """score/tag/cost/latency/full-text filters select the right traces, combine with AND, and stay in the
    project; tags come from tag.tags or llmops.tags and merge across batches."""
    store = SqlTraceStore(engine)
    inp, out = _chat("Where is the Eiffel tower?", "In Paris, near CANARY-A-42ff.")
    store.insert_spans(
        [
            _span(1, attributes={"tag.tags": ["prod", "beta"]}, input=inp, output=out, cost_usd=2.0),
            _span(2, attributes={"llmops.tags": "prod"}, end_ns=1_000 + 900_000_000),
            _span(3, project_id="p2", attributes={"tag.tags": ["prod"]}, input=inp, output=out),
        ]
    )
    store.insert_spans([_span(2, 2, attributes={"tag.tags": ["late"]}, cost_usd=0.0)])  # a later batch adds a tag
    scores = ScoreService(SqlScoreStore(engine))
    await scores.create_score("p1", NewScore(_tid(1), "quality", 0.9))
    await scores.create_score("p1", NewScore(_tid(2), "quality", 0.2))
    await scores.create_score("p1", NewScore(_tid(2), "verdict", "spam"))
    assert _ids(store, tags=("prod",)) == [_tid(2), _tid(1)]
    assert _ids(store, tags=("prod", "late")) == [_tid(2)]
    assert _ids(store, tags=("pro",)) == [] and _ids(store, tags=("%",)) == []
    assert store.find_trace("p1", _tid(2)).tags == ("prod", "late")  # type: ignore[union-attr]
    assert _ids(store, scores=(ScoreCondition("quality", "gt", 0.5),)) == [_tid(1)]
    assert _ids(store, scores=(ScoreCondition("quality", "lte", 0.9),)) == [_tid(2), _tid(1)]
    assert _ids(store, scores=(ScoreCondition("verdict", "eq", "spam"),)) == [_tid(2)]
    assert _ids(store, min_cost_usd=1.0) == [_tid(1)] and _ids(store, max_cost_usd=1.0) == [_tid(2)]
    assert _ids(store, min_latency_ms=100) == [_tid(2)] and _ids(store, max_latency_ms=100) == [_tid(1)]
    assert _ids(store, text="eiffel PARIS") == [_tid(1)]
    assert _ids(store, text="CANARY-A-42ff") == [_tid(1)]
    assert _ids(store, text='tower" OR "x') == [] and _ids(store, text="!!!") == []
    assert _ids(store, text="eiffel", tags=("beta",), min_cost_usd=1.5) == [_tid(1)]
    assert _ids(store, "p2", text="eiffel") == [_tid(3)]


async def test_metrics_group_by_prompt_session_and_tag(engine: Engine) -> None:
    """Metrics group by prompt name@version, session and tag; a span of a trace with two tags counts in both
    tag groups while the totals count it once."""
    s = 10**9
    store = SqlTraceStore(engine)
    prompt = {"llmops.prompt.name": "greet", "llmops.prompt.version": 2}
    store.insert_spans(
        [
            _span(1, start=1 * s, attributes={**prompt, "tag.tags": ["a", "b"]}, session_id="s1"),
            _span(2, start=2 * s, attributes={"llmops.prompt.name": "greet"}, session_id="s1"),
            _span(3, start=3 * s),
        ]
    )
    service = TraceService(store)

    async def groups(by: str) -> dict[object, int]:
        m = await service.metrics("p1", MetricsQuery(0, 10 * s, 10, by))  # type: ignore[arg-type]
        assert m["totals"]["requests"] == 3
        return {g["group"]: g["requests"] for g in m["groups"]}

    assert await groups("prompt") == {"greet@2": 1, "greet": 1, None: 1}
    assert await groups("session") == {"s1": 2, None: 1}
    assert await groups("tag") == {"a": 1, "b": 1, None: 2}


async def test_sessions_users_and_turns(engine: Engine) -> None:
    """Sessions list newest-active first with totals; a session's turns are its traces oldest first with the
    messages of their main span; users have cost, requests, errors, sessions and a feedback summary; another
    project's sessions and users are invisible."""
    store = SqlTraceStore(engine)
    turns = [_chat("hi", "hello"), _chat("how are you?", "fine")]
    store.insert_spans(
        [
            _span(1, 1, start=100, session_id="s1", user_id="ann", input=turns[0][0], output=turns[0][1]),
            _span(2, 1, start=200, session_id="s1", user_id="ann", status="error"),
            _span(2, 2, start=210, parent_span_id=_sid(1), input=turns[1][0], output=turns[1][1]),
            _span(3, 1, start=300, session_id="s2", user_id="bob"),
            _span(4, 1, start=400, session_id="s1", project_id="p2", user_id="ann"),
        ]
    )
    score_store = SqlScoreStore(engine)
    scores = ScoreService(score_store)
    await scores.create_score("p1", NewScore(_tid(1), "thumbs", True))
    await scores.create_score("p1", NewScore(_tid(2), "thumbs", False))
    await scores.create_score("p1", NewScore(_tid(2), "label", "rude"))
    service = SessionService(SqlSessionStore(engine), score_store)
    page = await service.list_sessions("p1")
    assert [(x.session_id, x.traces, x.errors) for x in page.items] == [("s2", 1, 0), ("s1", 2, 1)]
    assert (await service.list_sessions("p1", user_id="ann")).items[0].session_id == "s1"
    session, feedback = await service.get_session("p1", "s1")
    assert session.cost_usd == pytest.approx(1.5) and session.user_id == "ann"
    assert {f.name: (f.count, f.mean, f.labels) for f in feedback} == {
        "thumbs": (2, 0.5, {}),
        "label": (1, None, {"rude": 1}),
    }
    got = await service.turns("p1", "s1")
    assert [t.trace.trace_id for t in got.items] == [_tid(1), _tid(2)]
    assert [t.input for t in got.items] == [turns[0][0], turns[1][0]]  # turn 2 from its child span
    assert [len(t.scores) for t in got.items] == [1, 2]
    user, user_feedback = await service.get_user("p1", "ann")
    assert (user.requests, user.errors, user.sessions) == (2, 1, 1)
    assert [f.name for f in user_feedback] == ["label", "thumbs"]
    assert [u.user_id for u in (await service.list_users("p1")).items] == ["bob", "ann"]
    with pytest.raises(NotFoundError):
        await service.get_session("p2", "s2")
    with pytest.raises(NotFoundError):
        await service.get_user("p2", "bob")
    assert (await service.turns("p2", "s1")).items[0].trace.trace_id == _tid(4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 3)), min_size=1, max_size=25), st.integers(1, 4))
def test_session_and_user_pages_visit_each_once(tmp_path_factory, rows, limit) -> None:  # type: ignore[no-untyped-def]
    """Property: whatever the ties in last activity, paging sessions and users with any page size visits each once."""
    import asyncio

    eng = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('sess') / 's.db'}")
    upgrade(eng)
    store = SqlTraceStore(eng)
    store.insert_spans([_span(i, start=t, session_id=f"s-{k}", user_id=k) for i, (k, t) in enumerate(rows)])
    service = SessionService(SqlSessionStore(eng), SqlScoreStore(eng))

    async def walk(list_page) -> list[str]:  # type: ignore[no-untyped-def]
        seen, cursor = [], None
        while True:
            page = await list_page(cursor)
            seen += page.items
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    sessions = asyncio.run(walk(lambda c: service.list_sessions("p1", cursor=c, limit=limit)))
    users = asyncio.run(walk(lambda c: service.list_users("p1", cursor=c, limit=limit)))
    keys = {k for k, _ in rows}
    assert sorted(s.session_id for s in sessions) == sorted(f"s-{k}" for k in keys)
    assert sorted(u.user_id for u in users) == sorted(keys)
    eng.dispose()


def test_a_span_with_another_projects_trace_id_leaves_that_trace_alone(engine: Engine) -> None:
    """Trace ids come from clients: a span of project p2 reusing p1's trace id never changes p1's trace row
    (counts, tokens, cost, status) and stays invisible to p1."""
    store = SqlTraceStore(engine)
    store.insert_spans([_span(1)])
    before = store.find_trace("p1", _tid(1))
    store.insert_spans([_span(1, 2, project_id="p2", status="error", cost_usd=9.0, input_tokens=99)])
    assert store.find_trace("p1", _tid(1)) == before
    assert [s.span_id for s in store.list_spans("p1", _tid(1))] == [_sid(1)]
