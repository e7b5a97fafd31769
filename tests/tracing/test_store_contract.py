"""The SQL stores behave the same on SQLite and on a real PostgreSQL server (same migrations)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import ConflictError, InvalidInputError
from llmops.projects import ProjectService
from llmops.projects._sql import SqlProjectStore
from llmops.tracing import MetricsQuery, Span, TraceFilter, TraceService
from llmops.tracing._sql import SqlTraceStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests.support.postgres import create_database

        server_url = request.getfixturevalue("pg_server")
        url = create_database(server_url, "t_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    upgrade(eng)  # idempotent
    yield eng
    eng.dispose()


def _span(trace: str, span: str, start: int, **kw) -> Span:  # type: ignore[no-untyped-def]
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
    return Span(trace_id=trace, span_id=span, **base)  # type: ignore[arg-type]


def _tid(i: int) -> str:
    return f"{i:032x}"


def _sid(i: int) -> str:
    return f"{i:016x}"


def test_insert_is_idempotent_and_aggregates_traces(engine: Engine) -> None:
    """A retried batch adds nothing; the trace row sums tokens/cost of its spans and keeps error status."""
    store = SqlTraceStore(engine)
    batch = [_span(_tid(1), _sid(1), 100), _span(_tid(1), _sid(2), 200, parent_span_id=_sid(1), status="error")]
    assert store.insert_spans(batch) == 2
    assert store.insert_spans(batch) == 0
    assert store.insert_spans([*batch, _span(_tid(1), _sid(3), 50, parent_span_id=_sid(1))]) == 1
    trace = store.find_trace("p1", _tid(1))
    assert trace is not None
    assert (trace.span_count, trace.input_tokens, trace.output_tokens) == (3, 9, 6)
    assert trace.cost_usd == pytest.approx(1.5)
    assert trace.status == "error" and trace.start_ns == 50
    assert [s.span_id for s in store.list_spans("p1", _tid(1))] == [_sid(3), _sid(1), _sid(2)]


def test_span_payloads_round_trip(engine: Engine) -> None:
    store = SqlTraceStore(engine)
    attrs = {"gen_ai.request.temperature": 0.2, "list": [1, 2], "nested": {"a": "ü"}}
    msg = [{"role": "user", "parts": [{"type": "text", "content": "héllo"}]}]
    store.insert_spans([_span(_tid(2), _sid(1), 1, attributes=attrs, input=msg, output=msg, user_id="u")])
    got = store.list_spans("p1", _tid(2))[0]
    assert got.attributes == attrs and got.input == msg and got.output == msg and got.user_id == "u"


def test_one_batch_with_two_projects_on_one_trace_id_keeps_them_apart(engine: Engine) -> None:
    """The gateway's recorder writes every project's calls in one batch, and a caller can send another project's
    trace id: project p2's spans are never summed into p1's trace row, nor searchable from p1."""
    store = SqlTraceStore(engine)
    mine = _span(_tid(40), _sid(1), 100, user_id="ann", input="alpha report")
    theirs = _span(_tid(40), _sid(2), 50, project_id="p2", user_id="eve", input_tokens=1000, input="zulu secret")
    store.insert_spans([mine, theirs])
    trace = store.find_trace("p1", _tid(40))
    assert trace is not None
    assert (trace.span_count, trace.input_tokens, trace.user_id, trace.start_ns) == (1, 3, "ann", 100)
    assert store.list_traces("p1", TraceFilter(text="zulu"), after=None, limit=10) == []
    assert [t.trace_id for t in store.list_traces("p1", TraceFilter(text="alpha"), after=None, limit=10)] == [_tid(40)]
    assert store.find_trace("p2", _tid(40)) is None  # the id belongs to p1's row: p2 gets no aggregate


def test_queries_are_project_scoped(engine: Engine) -> None:
    store = SqlTraceStore(engine)
    store.insert_spans([_span(_tid(3), _sid(1), 1, project_id="p2")])
    assert store.find_trace("p1", _tid(3)) is None
    assert store.list_spans("p1", _tid(3)) == []
    assert store.list_traces("p1", TraceFilter(), after=None, limit=10) == []
    assert store.llm_span_rows("p1", 0, 10**18, None) == []


def test_filters(engine: Engine) -> None:
    store = SqlTraceStore(engine)
    store.insert_spans(
        [
            _span(_tid(10), _sid(1), 1000, user_id="ann", session_id="s1", request_model="a"),
            _span(_tid(11), _sid(1), 2000, user_id="bob", status="error", request_model="b"),
        ]
    )

    def ids(**kw) -> list[str]:  # type: ignore[no-untyped-def]
        return [t.trace_id for t in store.list_traces("p1", TraceFilter(**kw), after=None, limit=10)]

    assert ids() == [_tid(11), _tid(10)]
    assert ids(user_id="ann") == [_tid(10)]
    assert ids(status="error") == [_tid(11)]
    assert ids(model="a", session_id="s1") == [_tid(10)]
    assert ids(start_ns=1500) == [_tid(11)]
    assert ids(end_ns=1500) == [_tid(10)]


async def test_cursor_pagination_visits_every_trace_once(engine: Engine) -> None:
    store = SqlTraceStore(engine)
    store.insert_spans([_span(_tid(i), _sid(1), 1000 + i // 3) for i in range(1, 38)])  # ties on start_ns
    service = TraceService(store)
    seen, cursor = [], None
    while True:
        page = await service.list_traces("p1", TraceFilter(), cursor=cursor, limit=5)
        seen += [t.trace_id for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(_tid(i) for i in range(1, 38)) and len(seen) == 37
    with pytest.raises(InvalidInputError):
        await service.list_traces("p1", TraceFilter(), cursor="garbage", limit=5)


async def test_metrics_buckets_and_groups(engine: Engine) -> None:
    store = SqlTraceStore(engine)
    s = 10**9
    store.insert_spans(
        [
            _span(_tid(20), _sid(1), 0 * s, request_model="a"),
            _span(_tid(21), _sid(1), 1 * s, request_model="a", status="error"),
            _span(_tid(22), _sid(1), 65 * s, request_model="b"),
            _span(_tid(23), _sid(1), 66 * s, operation=None, kind="tool"),  # not an LLM call
        ]
    )
    m = await TraceService(store).metrics("p1", MetricsQuery(0, 120 * s, 60, "model"))
    assert m["totals"]["requests"] == 3 and m["totals"]["errors"] == 1
    assert [b["requests"] for b in m["series"]] == [2, 1]
    assert m["series"][0]["latency_p50_ms"] == pytest.approx(5.0)
    assert {g["group"]: g["requests"] for g in m["groups"]} == {"a": 2, "b": 1}
    assert m["totals"]["cost_usd"] == pytest.approx(1.5)


def test_project_store_contract(engine: Engine) -> None:
    service = ProjectService(SqlProjectStore(engine))
    created = service.bootstrap()
    assert created is not None and created.key.is_admin
    assert service.bootstrap() is None
    with pytest.raises(ConflictError):
        service.create_project("default")
    key = service.create_key("default", "k1")
    assert service.authenticate_sync(key.secret).key_id == key.key.key_id
    service.revoke_key(key.key.key_id)
    assert [k.active for k in service.list_keys("default")] == [True, False]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30))
def test_any_replayed_sequence_stores_each_span_once(tmp_path_factory, batches) -> None:  # type: ignore[no-untyped-def]
    """Property: whatever the order and repetition of batches, each (trace, span) is stored once."""
    eng = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'p.db'}")
    upgrade(eng)
    store = SqlTraceStore(eng)
    for t, s in batches:
        store.insert_spans([_span(_tid(t), _sid(s), 1), _span(_tid(t), _sid(s), 1)])
    unique = {(t, s) for t, s in batches}
    stored = sum(len(store.list_spans("p1", _tid(t))) for t in {t for t, _ in unique})
    assert stored == len(unique)
    for t in {t for t, _ in unique}:
        trace = store.find_trace("p1", _tid(t))
        assert trace is not None and trace.span_count == len([1 for tt, _ in unique if tt == t])
    eng.dispose()


@pytest.mark.postgres
def test_whole_server_runs_on_postgres(server_factory, pg_server: str) -> None:  # type: ignore[no-untyped-def]
    """LLMOPS_DATABASE_URL=postgresql+psycopg://… : migrations, keys, recording and queries on Postgres."""
    import openai

    from tests.support.postgres import create_database

    srv = server_factory(database_url=create_database(pg_server, "srv_" + uuid.uuid4().hex[:12]))
    assert srv.services.engine.dialect.name == "postgresql"
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key)
    client.embeddings.create(model="local-embed", input="stored in postgres")
    srv.flush()
    with srv.client() as c:
        traces = c.get("/api/traces").json()["data"]
        assert traces[0]["name"] == "embeddings local-embed"
        assert c.get("/api/metrics").json()["totals"]["requests"] == 1
