"""SQLAlchemy Core implementation of :class:`TraceStore` for SQLite and PostgreSQL.

Spans are keyed by (trace_id, span_id): a retried batch adds nothing twice. The ``traces`` table is a
per-trace aggregate kept in the same transaction as the spans it summarises.
"""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.core.db import create_db_engine
from llmops.core.errors import StorageUnavailableError
from llmops.tracing._sql_query import (
    decode_tags,
    encode_tags,
    of_project,
    prompt_group,
    query_conditions,
    scores,
    search_insert_sql,
    search_rows,
    search_table,
    span_tags,
)
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
            ("tags", sa.Text),
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
_TRACE_ORDER = "trace_id project_id name start_ns end_ns status user_id session_id model key_id input_tokens"
assert _TRACE_FIELDS == [*_TRACE_ORDER.split(), "output_tokens", "cost_usd", "span_count", "tags"]  # noqa: S101  _aggregate's row
_GROUP_COLUMNS = {
    "model": spans.c.request_model,
    "key": spans.c.key_id,
    "user": spans.c.user_id,
    "session": spans.c.session_id,
}


_JSON_COLS = ("attributes", "input", "output")
_SCALAR_COLS = [c.name for c in spans.c if c.name not in _JSON_COLS]
_scalars = operator.attrgetter(*_SCALAR_COLS)  # one C call per span (the hot path of ingest)
_orjson_dumps = orjson.dumps


def _span_values(s: Span) -> tuple[Any, ...]:
    """The span as a row in ``_SPAN_COLS`` order (scalar columns, then the JSON ones)."""
    inp, out = s.input, s.output
    return (
        *_scalars(s),
        _orjson_dumps(s.attributes, default=str).decode() if s.attributes is not None else "{}",
        None if inp is None else _orjson_dumps(inp, default=str).decode(),
        None if out is None else _orjson_dumps(out, default=str).decode(),
    )


def _span_from_row(m: Any) -> Span:
    data = dict(m)
    data["attributes"] = orjson.loads(data["attributes"] or "{}")
    data["input"] = orjson.loads(data["input"]) if data["input"] else None
    data["output"] = orjson.loads(data["output"]) if data["output"] else None
    return Span(**data)


def _aggregate(new: list[Span]) -> list[tuple[Any, ...]]:
    """One ``traces`` row (``_TRACE_FIELDS`` order) per trace of ``new``, in one pass over each trace's spans.
    Grouped by project and trace id: the gateway's recorder batches every project's calls, and a caller may send
    another project's trace id (``traceparent``); its spans must not be summed into that project's row (the
    upsert then leaves the other project's row alone)."""
    by_trace: dict[tuple[str, str], list[Span]] = {}
    for s in new:
        key = (s.project_id, s.trace_id)
        group = by_trace.get(key)
        if group is None:
            by_trace[key] = [s]
        else:
            group.append(s)
    rows = []
    for (_, trace_id), group in by_trace.items():
        first = group[0]
        root = None
        earliest = first  # the first span with the smallest start: the root when no span lacks a parent
        start, end, failed = first.start_ns, first.end_ns, False
        user_id = session_id = model = key_id = None
        input_tokens = output_tokens = 0
        costs, tags = [], []
        for s in group:
            if root is None and s.parent_span_id is None:
                root = s
            if s.start_ns < start:
                start, earliest = s.start_ns, s
            if s.end_ns > end:
                end = s.end_ns
            if s.status == "error":
                failed = True
            user_id = user_id or s.user_id or None
            session_id = session_id or s.session_id or None
            model = model or s.request_model or None
            key_id = key_id or s.key_id or None
            input_tokens += s.input_tokens or 0
            output_tokens += s.output_tokens or 0
            costs.append(s.cost_usd or 0.0)
            attributes = s.attributes
            if "tag.tags" in attributes or "llmops.tags" in attributes:
                tags += span_tags(attributes)
        rows.append(
            (
                trace_id,
                first.project_id,
                (root or earliest).name,
                start,
                end,
                "error" if failed else "ok",
                user_id,
                session_id,
                model,
                key_id,
                input_tokens,
                output_tokens,
                sum(costs),
                len(group),
                encode_tags(tags),
            )
        )
    return rows


_SPAN_COLS = [*_SCALAR_COLS, *_JSON_COLS]  # the order of _span_values
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
    span_count = traces.span_count + excluded.span_count,
    tags = CASE WHEN excluded.tags IS NULL THEN traces.tags WHEN traces.tags IS NULL THEN excluded.tags
                ELSE traces.tags || excluded.tags END
    WHERE traces.project_id = excluded.project_id"""  # trace ids come from clients: never touch another project's


def _summary(m: Any) -> TraceSummary:
    return TraceSummary(**{**m, "tags": decode_tags(m["tags"])})


def _insert_sql(table: str, cols: list[str], mark: str, conflict: str) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}) {conflict}"


class _MultiRowInsert:
    """One ``INSERT … VALUES (…), (…), …`` per chunk of rows instead of ``executemany`` (SQLite).

    Why: Python's sqlite3 releases the GIL around every ``sqlite3_step``, i.e. once per row of an executemany.
    When the event loop keeps the GIL busy (a gateway under load), each re-acquisition waits a whole switch
    interval (5 ms), so a 512-span batch took seconds and the span queue overflowed. One statement per chunk
    hands the GIL over a few times per batch instead of once per row.

    Statements come in power-of-two row counts only (a chunk of 300 rows runs as 256 + 32 + 8 + 4): sqlite3 keeps
    every distinct statement prepared in its per-connection cache, and one per batch size (1..512 rows, 20k host
    parameters each) grew the server's memory by hundreds of MB under varied load (docs/benchmarks.md, issue 2).
    """

    MAX_PARAMS = 30_000  # SQLite >= 3.32 allows 32,766 host parameters per statement

    def __init__(self, head: str, width: int, tail: str) -> None:
        self._head, self._width, self._tail = head, width, tail
        most = max(1, self.MAX_PARAMS // width)
        self._largest = 1 << (most.bit_length() - 1)  # the largest power of two within the parameter limit
        self._row = "(" + ", ".join(["?"] * width) + ")"
        self._sql: dict[int, str] = {}

    def run(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> int:
        """Insert ``rows``; returns how many rows the statements changed (an ``ON CONFLICT DO NOTHING`` row
        that conflicted is not counted)."""
        i, left, changed = 0, len(rows), 0
        while left:
            size = min(self._largest, 1 << (left.bit_length() - 1))
            sql = self._sql.get(size)
            if sql is None:
                sql = self._sql[size] = f"{self._head} VALUES {', '.join([self._row] * size)} {self._tail}"
            changed += conn.exec_driver_sql(sql, tuple(chain.from_iterable(rows[i : i + size]))).rowcount
            i, left = i + size, left - size
        return changed


def _multi_from(single_row_sql: str, width: int) -> _MultiRowInsert:
    """Split ``INSERT INTO t (cols) VALUES (?, …) tail`` into its head and tail around the one VALUES row."""
    head, rest = single_row_sql.split(" VALUES ", 1)
    tail = rest[rest.index(")") + 1 :].strip()
    return _MultiRowInsert(head, width, tail)


@dataclass
class PreparedRows:
    """A batch of spans already turned into rows (see :meth:`SqlTraceStore.prepare_rows`): picklable, so an
    ingest worker process can build it and the writer thread only runs SQL. Trace aggregates are computed over
    every span of the batch; if some were stored before (a retried batch), the writer rebuilds them from the
    new spans only."""

    spans: list[tuple[Any, ...]]  # _SPAN_COLS order
    traces: list[tuple[Any, ...]]  # _TRACE_FIELDS order
    search: list[tuple[str, str, str, str]]


WORKER_CACHE_MIB = 64


def _worker_cache(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute(f"PRAGMA cache_size=-{WORKER_CACHE_MIB * 1024}")


class _SomeStored(Exception):
    """A batch held spans stored before: its all-new insert is rolled back and redone (:meth:`insert_prepared`)."""


_TRACE_ID_AT, _SPAN_ID_AT = _SCALAR_COLS.index("trace_id"), _SCALAR_COLS.index("span_id")


def _span_from_values(row: tuple[Any, ...]) -> Span:
    return _span_from_row(zip(_SPAN_COLS, row, strict=True))


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
        self._exists_sql = "SELECT trace_id, span_id FROM spans WHERE trace_id IN ({}) AND span_id IN ({})"
        self._mark = mark
        self._dialect = engine.dialect.name
        self._search_sql = search_insert_sql(self._dialect)
        self._multi: dict[str, _MultiRowInsert] | None = None
        if self._dialect == "sqlite":
            self._multi = {
                "spans": _multi_from(self._span_sql, len(_SPAN_COLS)),
                "traces": _multi_from(self._trace_sql, len(_TRACE_FIELDS)),
                "search": _multi_from(self._search_sql, 4),
            }
        # One writer at a time per process: SQLite upgrades a read transaction to a write one without waiting
        # (SQLITE_BUSY at once), and concurrent aggregates of one trace would double-count on PostgreSQL.
        self._write_lock = threading.Lock()

    @classmethod
    def at(cls, database_url: str) -> SqlTraceStore:
        """A store on its own engine: what an ingest worker process opens (picklable as ``partial(at, url)``).
        On SQLite its connections keep a page cache of ``WORKER_CACHE_MIB`` (SQLite's default is 2 MiB): a
        span's primary-key entry lands on a random page of an index that outgrows 2 MiB at ~30k spans, and a
        cached page is not read again (~3 µs less SQL per span at 60k stored spans, docs/benchmarks.md)."""
        engine = create_db_engine(database_url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _worker_cache)
        return cls(engine)

    def insert_spans(self, batch: list[Span]) -> int:
        return self.insert_prepared(self.prepare_rows(batch)) if batch else 0

    @staticmethod
    def prepare_rows(batch: list[Span]) -> PreparedRows:
        """Rows for :meth:`insert_prepared`; pure (no database), module-level picklable."""
        unique = list({(s.trace_id, s.span_id): s for s in batch}.values())
        return PreparedRows(
            [_span_values(sp) for sp in unique],
            _aggregate(unique),
            search_rows(unique),
        )

    def insert_prepared(self, prepared: PreparedRows) -> int:
        """Insert a prepared batch in one transaction (a (trace_id, span_id) already stored is skipped);
        returns how many spans were new. Commits before returning."""
        if not prepared.spans:
            return 0
        try:
            with self._write_lock:
                if self._multi is not None:
                    try:
                        with self._engine.begin() as conn:
                            return self._insert_all_new(conn, prepared)
                    except _SomeStored:
                        pass  # rolled back: a retried batch, inserted below with its stored spans left out
                with self._engine.begin() as conn:
                    return self._insert_looked_up(conn, prepared)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise StorageUnavailableError(f"the trace database is unavailable: {type(exc.orig).__name__}") from exc

    def _insert_all_new(self, conn: sa.Connection, prepared: PreparedRows) -> int:
        """SQLite, the common case of a batch whose spans are all new: insert them without looking their keys up
        first, and raise :class:`_SomeStored` (the caller rolls back) when the statements report that some
        conflicted, i.e. were stored before (a retried batch)."""
        assert self._multi is not None  # noqa: S101  (only set up for SQLite)
        if self._multi["spans"].run(conn, prepared.spans) != len(prepared.spans):
            raise _SomeStored
        self._multi["traces"].run(conn, prepared.traces)
        self._multi["search"].run(conn, prepared.search)  # type: ignore[arg-type]
        return len(prepared.spans)

    def _insert_looked_up(self, conn: sa.Connection, prepared: PreparedRows) -> int:
        """PostgreSQL (and a retried batch on SQLite): look the batch's keys up first; a retried batch inserts its
        new spans only, with aggregates and search rows of those only."""
        keys = [(r[_TRACE_ID_AT], r[_SPAN_ID_AT]) for r in prepared.spans]
        existing = self._existing(conn, keys)
        if existing:
            new = [_span_from_values(r) for r in prepared.spans if (r[_TRACE_ID_AT], r[_SPAN_ID_AT]) not in existing]
            return self._insert_rows(conn, self.prepare_rows(new)) if new else 0
        return self._insert_rows(conn, prepared)

    def _insert_rows(self, conn: sa.Connection, prepared: PreparedRows) -> int:
        rows, trace_rows, searchable = prepared.spans, prepared.traces, prepared.search
        if self._multi is not None:
            self._multi["spans"].run(conn, rows)
            self._multi["traces"].run(conn, trace_rows)
            self._multi["search"].run(conn, searchable)  # type: ignore[arg-type]
            return len(rows)
        conn.exec_driver_sql(self._span_sql, rows)
        conn.exec_driver_sql(self._trace_sql, trace_rows)
        if searchable:
            conn.exec_driver_sql(self._search_sql, searchable)
        return len(rows)

    def _existing(self, conn: sa.Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Stored (trace_id, span_id) among ``keys``: looked up by both key columns, so a batch of a trace
        that already has thousands of spans reads only candidate rows."""
        found: set[tuple[str, str]] = set()
        for i in range(0, len(keys), 400):
            chunk = keys[i : i + 400]
            trace_ids, span_ids = {k[0] for k in chunk}, {k[1] for k in chunk}
            sql = self._exists_sql.format(
                ", ".join([self._mark] * len(trace_ids)), ", ".join([self._mark] * len(span_ids))
            )
            found.update((r[0], r[1]) for r in conn.exec_driver_sql(sql, (*trace_ids, *span_ids)))
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
        q = q.where(*query_conditions(self._dialect, project_id, flt, traces, spans))
        if after is not None:
            q = q.where(sa.tuple_(t.start_ns, t.trace_id) < sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        q = q.order_by(t.start_ns.desc(), t.trace_id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_summary(r._mapping) for r in conn.execute(q)]

    def find_trace(self, project_id: str, trace_id: str) -> TraceSummary | None:
        q = sa.select(traces).where(traces.c.project_id == project_id, traces.c.trace_id == trace_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _summary(row._mapping) if row else None

    def list_spans(self, project_id: str, trace_id: str) -> list[Span]:
        q = (
            sa.select(spans)
            .where(spans.c.trace_id == trace_id, of_project(spans.c.project_id, project_id))
            .order_by(spans.c.start_ns, spans.c.span_id)
        )
        with self._engine.connect() as conn:
            return [_span_from_row(r._mapping) for r in conn.execute(q)]

    def list_span_page(
        self, project_id: str, trace_id: str, *, after: tuple[int, str] | None, limit: int
    ) -> list[Span]:
        c = spans.c
        q = sa.select(spans).where(c.trace_id == trace_id, of_project(c.project_id, project_id))
        if after is not None:
            q = q.where(sa.or_(c.start_ns > after[0], sa.and_(c.start_ns == after[0], c.span_id > after[1])))
        q = q.order_by(c.start_ns, c.span_id).limit(limit)
        with self._engine.connect() as conn:
            return [_span_from_row(r._mapping) for r in conn.execute(q)]

    def delete_traces_before(self, project_id: str, before_ns: int, *, limit: int) -> int:
        t = traces.c
        pick = sa.select(t.trace_id).where(t.project_id == project_id, t.start_ns < before_ns).limit(limit)
        with self._engine.connect() as conn:
            trace_ids = [r[0] for r in conn.execute(pick)]
        if not trace_ids:
            return 0
        with self._write_lock, self._engine.begin() as conn:  # first statement writes: no lock upgrade
            for table in (spans, search_table, scores, traces):
                # spans: keyed by trace id (see of_project); scores: its index is (project_id, trace_id)
                mine = (
                    of_project(spans.c.project_id, project_id) if table is spans else table.c.project_id == project_id
                )
                conn.execute(table.delete().where(table.c.trace_id.in_(trace_ids), mine))
        return len(trace_ids)

    def llm_span_rows(
        self, project_id: str, start_ns: int, end_ns: int, group_col: str | None
    ) -> list[tuple[int, float, str, int, int, float, str | None]]:
        s = spans.c
        group: Any = _GROUP_COLUMNS[group_col] if group_col in _GROUP_COLUMNS else sa.null()
        if group_col == "prompt":
            group = prompt_group(self._dialect, s.attributes)
        elif group_col == "tag":
            # the trace row of this project only: a client may reuse another project's trace id
            group = (
                sa.select(traces.c.tags)
                .where(traces.c.trace_id == s.trace_id, traces.c.project_id == project_id)
                .scalar_subquery()
            )
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
            rows = [tuple(r) for r in conn.execute(q)]
        if group_col == "tag":  # a trace with several tags counts in each tag's group (see TraceService.metrics)
            rows = [(*r[:6], decode_tags(r[6])) for r in rows]
        return rows  # type: ignore[return-value]
