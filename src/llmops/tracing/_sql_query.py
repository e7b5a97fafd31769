"""Trace query building blocks shared by the SQL stores: filter conditions, tags, full-text search rows.

- Attribute filters match a span's JSON ``attributes`` by key (SQLite ``json_extract`` with a quoted path,
  PostgreSQL ``->>``); the key and value are always bound parameters, never spliced into SQL.
- Tags are stored on ``traces.tags`` as ``\\x1fa\\x1fb\\x1f`` so "has tag t" is one ``LIKE '%\\x1ft\\x1f%'``;
  spans of one trace arriving in several batches append, duplicates are dropped on read.
- Full text: one ``trace_search`` row per trace per written batch with its spans' input/output text, written
  in the spans' transaction (SQLite FTS5; PostgreSQL ``to_tsvector('simple', …)`` + GIN).
  Every word of a query must occur (case-insensitive; a hyphenated word means all of its parts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from llmops.tracing.models import ScoreCondition, Span, TraceFilter

TAG_SEP = "\x1f"
TAG_ATTRIBUTES = ("tag.tags", "llmops.tags")
MAX_TAGS = 50
MAX_TAG_CHARS = 200
MAX_SEARCH_CHARS = 32_000
_TOKEN = re.compile(r"[^\W_]+")
_SKIP_KEYS = frozenset({"role", "type", "finish_reason", "id"})

_meta = sa.MetaData()
search_table = sa.Table(
    "trace_search",
    _meta,
    sa.Column("project_id", sa.String),
    sa.Column("trace_id", sa.String),
    sa.Column("span_id", sa.String),
    sa.Column("body", sa.Text),
)
scores = sa.Table(
    "scores",
    _meta,
    sa.Column("score_id", sa.String, primary_key=True),
    *(
        sa.Column(name, typ)
        for name, typ in [
            ("project_id", sa.String),
            ("trace_id", sa.String),
            ("span_id", sa.String),
            ("name", sa.String),
            ("data_type", sa.String),
            ("value", sa.Float),
            ("string_value", sa.String),
            ("comment", sa.Text),
            ("source", sa.String),
            ("idempotency_key", sa.String),
            ("created_ns", sa.BigInteger),
        ]
    ),
)


# --- tags ---------------------------------------------------------------------------------------------


def clean_tag(tag: object) -> str:
    return str(tag).replace(TAG_SEP, "").strip()[:MAX_TAG_CHARS]


def span_tags(attributes: dict[str, Any]) -> list[str]:
    """Tags of a span: attribute ``tag.tags`` or ``llmops.tags``, a list (or a comma-separated string)."""
    out: list[str] = []
    if "tag.tags" not in attributes and "llmops.tags" not in attributes:  # TAG_ATTRIBUTES; most spans
        return out
    for key in TAG_ATTRIBUTES:
        raw = attributes.get(key)
        values = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
        out += [t for t in map(clean_tag, values) if t and t not in out]
    return out[:MAX_TAGS]


def encode_tags(tags: Iterable[str]) -> str | None:
    unique = list(dict.fromkeys(tags))
    return TAG_SEP + TAG_SEP.join(unique) + TAG_SEP if unique else None


def decode_tags(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(dict.fromkeys(t for t in text.split(TAG_SEP) if t))


# --- full-text rows -----------------------------------------------------------------------------------


def _collect(value: Any, out: list[str]) -> None:
    """Append every string under ``value`` (depth first, in order) to ``out``; strings and scalars in a
    container are handled inline (no call per leaf)."""
    kind = type(value)
    if kind is str:
        out.append(value)
    elif kind is list:
        for v in value:
            t = type(v)
            if t is str:
                out.append(v)
            elif t is dict or t is list:
                _collect(v, out)
    elif kind is dict:
        for k, v in value.items():
            if k in _SKIP_KEYS:
                continue
            t = type(v)
            if t is str:
                out.append(v)
            elif t is dict or t is list:
                _collect(v, out)


def search_rows(batch: list[Span]) -> list[tuple[str, str, str, str]]:
    """Full-text rows of a batch: one per trace and project (``span_id`` is its first span with text), holding every
    input/output string of that trace's spans in the batch, each span's text cut at ``MAX_SEARCH_CHARS``; a
    trace's text beyond ``MAX_SEARCH_CHARS`` starts another row. Search answers trace ids, so one document per
    trace loses nothing, and FTS5 (``detail=none``) stores a word once per document: a trace's spans repeat their
    text (prompt, context, answer), so this writes far fewer index entries than a row per span. For the same
    reason a string a trace's spans repeat exactly (a chain's input passed on to its model call) is written once
    per batch (the benchmark's agent traces: 42 % less text to tokenize). On the ingest hot path: an accumulator,
    not generators (about 3x cheaper)."""
    # (project_id, trace_id) -> [project_id, trace_id, span_id, [texts], chars]. Keyed by project too: the
    # gateway's recorder batches calls of every project, and a caller may reuse another project's trace id.
    docs: dict[tuple[str, str], list[Any]] = {}
    seen: dict[tuple[str, str], set[str]] = {}  # the strings each trace's rows already hold
    rows: list[tuple[str, str, str, str]] = []
    for s in batch:
        inp, outp = s.input, s.output
        if inp is None and outp is None:
            continue
        out: list[str] = []
        if inp is not None:
            _collect(inp, out)
        if outp is not None:
            _collect(outp, out)
        if not out:
            continue
        key = (s.project_id, s.trace_id)
        held = seen.get(key)
        if held is None:
            held = seen[key] = set()
        fresh = []
        for t in out:
            if t not in held:
                held.add(t)
                fresh.append(t)
        text = "\n".join(fresh)[:MAX_SEARCH_CHARS]
        if not text:
            continue
        doc = docs.get(key)
        if doc is not None and doc[4] + len(text) > MAX_SEARCH_CHARS:
            rows.append((doc[0], doc[1], doc[2], "\n".join(doc[3])))
            doc = None
        if doc is None:
            docs[key] = [s.project_id, s.trace_id, s.span_id, [text], len(text)]
        else:
            doc[3].append(text)
            doc[4] += len(text) + 1
    rows += [(d[0], d[1], d[2], "\n".join(d[3])) for d in docs.values()]
    return rows


def search_insert_sql(dialect: str) -> str:
    head = "INSERT INTO trace_search (project_id, trace_id, span_id, body) VALUES "
    return head + ("(?, ?, ?, ?)" if dialect == "sqlite" else "(%s, %s, %s, to_tsvector('simple', %s))")


def fts5_query(text: str) -> str | None:
    """Every word token of ``text`` as a quoted FTS5 term, all required; None when there is none. The index keeps
    no positions (cheaper to write), so a hyphenated word means its parts, like PostgreSQL's plainto_tsquery."""
    tokens = _TOKEN.findall(text)
    return " ".join(f'"{t}"' for t in tokens) or None


def text_condition(dialect: str, project_id: str, text: str, trace_id: Any) -> ColumnElement[bool]:
    st = search_table.c
    if dialect == "sqlite":
        query = fts5_query(text)
        if query is None:
            return sa.false()
        match = sa.text("trace_search MATCH :fts_query").bindparams(fts_query=query)
        sub = sa.select(st.trace_id).where(match, st.project_id == project_id)
    else:
        tsquery = sa.func.plainto_tsquery(sa.literal_column("'simple'"), text)
        sub = sa.select(st.trace_id).where(st.body.bool_op("@@")(tsquery), st.project_id == project_id)
    return trace_id.in_(sub)


# --- filter conditions --------------------------------------------------------------------------------


def attribute_value(dialect: str, attributes: Any, key: str) -> ColumnElement[Any]:
    """The attribute ``key`` of a JSON text column, as text (the key is a bound parameter)."""
    if dialect == "sqlite":
        return sa.cast(sa.func.json_extract(attributes, '$."' + key + '"'), sa.Text)
    return sa.cast(attributes, postgresql.JSON)[key].astext


def of_project(column: Any, project: Any) -> ColumnElement[bool]:
    """``column = project`` for a query that is keyed by trace id, written so no planner uses it to pick an index.

    Spans have two indexes a "spans of trace T in project P" query could use: the primary key ``(trace_id,
    span_id)`` and ``(project_id, start_ns)``. Without statistics SQLite's planner rates one equality term alike
    on both and took the project index, reading every span of the project for one trace (a trace page, each
    candidate trace of an attribute filter, a retention delete). ``project_id || ''`` is an expression, not the
    column, so only the trace id can pick the index (SQLite and PostgreSQL alike). tests/tracing/test_query_plans.py
    checks the plans of the store's queries."""
    return column.concat("") == project


def _text_candidates(dialect: str, value: str) -> list[str]:
    if dialect == "sqlite" and value in ("true", "false"):  # SQLite's JSON functions turn booleans into 1/0
        return [value, "1" if value == "true" else "0"]
    return [value]


def _attribute_condition(dialect: str, key: str, value: str, traces: sa.Table, spans: sa.Table) -> Any:
    s = spans.c
    extracted = attribute_value(dialect, s.attributes, key)
    return sa.exists().where(
        s.trace_id == traces.c.trace_id,
        of_project(s.project_id, traces.c.project_id),
        extracted.in_(_text_candidates(dialect, value)),
    )


def _score_condition(cond: ScoreCondition, traces: sa.Table) -> Any:
    s = scores.c
    column: Any = s.string_value if isinstance(cond.value, str) else s.value
    ops = {
        "gt": column > cond.value,
        "gte": column >= cond.value,
        "lt": column < cond.value,
        "lte": column <= cond.value,
        "eq": column == cond.value,
        "ne": column != cond.value,
    }
    return sa.exists().where(
        s.project_id == traces.c.project_id, s.trace_id == traces.c.trace_id, s.name == cond.name, ops[cond.op]
    )


def query_conditions(dialect: str, project_id: str, flt: TraceFilter, traces: sa.Table, spans: sa.Table) -> list[Any]:
    """The conditions for the query fields of ``flt`` (attributes, scores, tags, ranges, text, key)."""
    t = traces.c
    conds: list[Any] = [_attribute_condition(dialect, k, v, traces, spans) for k, v in flt.attributes]
    conds += [_score_condition(c, traces) for c in flt.scores]
    conds += [t.tags.contains(TAG_SEP + clean_tag(tag) + TAG_SEP, autoescape=True) for tag in flt.tags]
    ranges = [
        (flt.min_cost_usd, lambda v: t.cost_usd >= v),
        (flt.max_cost_usd, lambda v: t.cost_usd <= v),
        (flt.min_latency_ms, lambda v: t.end_ns - t.start_ns >= int(v * 1e6)),
        (flt.max_latency_ms, lambda v: t.end_ns - t.start_ns <= int(v * 1e6)),
        (flt.key_id, lambda v: t.key_id == v),
    ]
    conds += [cond(value) for value, cond in ranges if value is not None]
    if flt.text:
        conds.append(text_condition(dialect, project_id, flt.text, t.trace_id))
    return conds


def prompt_group(dialect: str, attributes: Any) -> ColumnElement[Any]:
    """``name@version`` of ``llmops.prompt.*`` (just the name without a version; NULL without a name)."""
    name = attribute_value(dialect, attributes, "llmops.prompt.name")
    version = attribute_value(dialect, attributes, "llmops.prompt.version")
    return sa.func.coalesce(name + "@" + version, name)
