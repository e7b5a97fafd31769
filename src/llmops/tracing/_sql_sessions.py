"""SQLAlchemy Core implementation of :class:`~llmops.tracing.sessions.SessionStore` (SQLite and PostgreSQL).

Sessions and users are GROUP BYs over the ``traces`` aggregate (indexes ``(project_id, session_id,
start_ns)`` and ``(project_id, user_id, start_ns)``), paged by keyset on (newest start, id).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.tracing._sql import _span_from_row, _summary, spans, traces
from llmops.tracing._sql_query import of_project, scores
from llmops.tracing.models import Span, TraceSummary
from llmops.tracing.sessions import ScoreSummary, SessionSummary, UserSummary

_t = traces.c


def _totals() -> list[Any]:
    return [
        sa.func.min(_t.start_ns).label("first_ns"),
        sa.func.max(_t.start_ns).label("last_ns"),
        sa.func.count().label("traces"),
        sa.func.coalesce(sa.func.sum(sa.case((_t.status == "error", 1), else_=0)), 0).label("errors"),
        sa.func.coalesce(sa.func.sum(_t.input_tokens), 0).label("input_tokens"),
        sa.func.coalesce(sa.func.sum(_t.output_tokens), 0).label("output_tokens"),
        sa.func.coalesce(sa.func.sum(_t.cost_usd), 0.0).label("cost_usd"),
    ]


def _keyset(q: sa.Select[Any], key: Any, after: tuple[int, str] | None, limit: int) -> sa.Select[Any]:
    last = sa.func.max(_t.start_ns)
    if after is not None:
        q = q.having(sa.or_(last < after[0], sa.and_(last == after[0], key < after[1])))
    return q.order_by(last.desc(), key.desc()).limit(limit)


def _sessions_query(project_id: str) -> sa.Select[Any]:
    cols = [_t.session_id, sa.func.min(_t.user_id).label("user_id"), sa.func.max(_t.end_ns).label("end_ns")]
    return (
        sa.select(*cols, *_totals())
        .where(_t.project_id == project_id, _t.session_id.is_not(None))
        .group_by(_t.session_id)
    )


def _session(m: Any) -> SessionSummary:
    return SessionSummary(**{**m, "input_tokens": int(m["input_tokens"]), "output_tokens": int(m["output_tokens"])})


def _users_query(project_id: str) -> sa.Select[Any]:
    sessions = sa.func.count(sa.distinct(_t.session_id)).label("sessions")
    return (
        sa.select(_t.user_id, sessions, *_totals())
        .where(_t.project_id == project_id, _t.user_id.is_not(None))
        .group_by(_t.user_id)
    )


def _user(m: Any) -> UserSummary:
    data = {**m, "requests": m["traces"], "input_tokens": int(m["input_tokens"])}
    data["output_tokens"] = int(m["output_tokens"])
    del data["traces"]
    return UserSummary(**data)


def _fold_summaries(rows: list[Any]) -> dict[str, list[ScoreSummary]]:
    """Rows (group, name, label, count, sum of values, count of values) into summaries per group."""
    acc: dict[str, dict[str, list[Any]]] = {}
    for group, name, label, count, total, valued in rows:
        cell = acc.setdefault(group, {}).setdefault(name, [0, 0.0, 0, {}])
        cell[0] += count
        cell[1] += total or 0.0
        cell[2] += valued
        if label is not None:
            cell[3][label] = cell[3].get(label, 0) + count
    return {
        group: [ScoreSummary(n, c[0], c[1] / c[2] if c[2] else None, c[3]) for n, c in sorted(by_name.items())]
        for group, by_name in acc.items()
    }


class SqlSessionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_sessions(
        self, project_id: str, *, user_id: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[SessionSummary]:
        q = _sessions_query(project_id)
        if user_id is not None:
            q = q.where(_t.user_id == user_id)
        q = _keyset(q, _t.session_id, after, limit)
        with self._engine.connect() as conn:
            return [_session(r._mapping) for r in conn.execute(q)]

    def find_session(self, project_id: str, session_id: str) -> SessionSummary | None:
        q = _sessions_query(project_id).where(_t.session_id == session_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _session(row._mapping) if row else None

    def session_traces(
        self, project_id: str, session_id: str, *, after: tuple[int, str] | None, limit: int
    ) -> list[TraceSummary]:
        q = sa.select(traces).where(_t.project_id == project_id, _t.session_id == session_id)
        if after is not None:
            q = q.where(sa.or_(_t.start_ns > after[0], sa.and_(_t.start_ns == after[0], _t.trace_id > after[1])))
        q = q.order_by(_t.start_ns, _t.trace_id).limit(limit)
        with self._engine.connect() as conn:
            return [_summary(r._mapping) for r in conn.execute(q)]

    def spans_of_traces(self, project_id: str, trace_ids: list[str], *, content_only: bool = False) -> list[Span]:
        s = spans.c
        out: list[Span] = []
        with self._engine.connect() as conn:
            for i in range(0, len(trace_ids), 500):
                q = sa.select(spans).where(s.trace_id.in_(trace_ids[i : i + 500]), of_project(s.project_id, project_id))
                if content_only:
                    q = q.where(sa.or_(s.input.is_not(None), s.output.is_not(None)))
                q = q.order_by(s.trace_id, s.start_ns, s.span_id)
                out += [_span_from_row(r._mapping) for r in conn.execute(q)]
        return out

    def list_users(self, project_id: str, *, after: tuple[int, str] | None, limit: int) -> list[UserSummary]:
        q = _keyset(_users_query(project_id), _t.user_id, after, limit)
        with self._engine.connect() as conn:
            return [_user(r._mapping) for r in conn.execute(q)]

    def find_user(self, project_id: str, user_id: str) -> UserSummary | None:
        q = _users_query(project_id).where(_t.user_id == user_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _user(row._mapping) if row else None

    def score_summaries(
        self, project_id: str, *, user_ids: list[str] | None = None, session_id: str | None = None
    ) -> dict[str, list[ScoreSummary]]:
        sc = scores.c
        group = _t.session_id if session_id is not None else _t.user_id
        q = (
            sa.select(group, sc.name, sc.string_value, sa.func.count(), sa.func.sum(sc.value), sa.func.count(sc.value))
            .select_from(scores.join(traces, sa.and_(_t.trace_id == sc.trace_id, _t.project_id == sc.project_id)))
            .where(sc.project_id == project_id)
            .group_by(group, sc.name, sc.string_value)
        )
        q = q.where(_t.session_id == session_id) if session_id is not None else q.where(group.in_(user_ids or []))
        with self._engine.connect() as conn:
            return _fold_summaries([tuple(r) for r in conn.execute(q)])
