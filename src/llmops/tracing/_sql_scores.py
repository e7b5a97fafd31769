"""SQLAlchemy Core implementation of :class:`~llmops.tracing.scores.ScoreStore` (SQLite and PostgreSQL).

Idempotency rides on the unique index ``(project_id, idempotency_key)``: a concurrent duplicate loses the
insert race, and the loser reads back the winner's row, so a key never yields two scores.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llmops.tracing._sql import spans, traces
from llmops.tracing._sql_query import scores
from llmops.tracing.scores import Score, ScoreFilter, ScorePoint


def _score(row: Any) -> Score:
    return Score(**row._mapping)


class SqlScoreStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def insert_score(self, score: Score) -> Score:
        if score.idempotency_key is not None:
            existing = self._find_by_key(score.project_id, score.idempotency_key)
            if existing is not None:
                return existing
        try:
            with self._engine.begin() as conn:
                conn.execute(scores.insert().values(**score.__dict__))
        except IntegrityError:
            if score.idempotency_key is None:
                raise
            existing = self._find_by_key(score.project_id, score.idempotency_key)
            if existing is None:
                raise
            return existing
        return score

    def _find_by_key(self, project_id: str, key: str) -> Score | None:
        q = sa.select(scores).where(scores.c.project_id == project_id, scores.c.idempotency_key == key)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _score(row) if row else None

    def find_score(self, project_id: str, score_id: str) -> Score | None:
        q = sa.select(scores).where(scores.c.project_id == project_id, scores.c.score_id == score_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _score(row) if row else None

    def list_scores(
        self, project_id: str, flt: ScoreFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[Score]:
        c = scores.c
        q = sa.select(scores).where(c.project_id == project_id)
        for column, value in ((c.trace_id, flt.trace_id), (c.span_id, flt.span_id), (c.name, flt.name)):
            if value is not None:
                q = q.where(column == value)
        if flt.source is not None:
            q = q.where(c.source == flt.source)
        if after is not None:
            q = q.where(sa.or_(c.created_ns < after[0], sa.and_(c.created_ns == after[0], c.score_id < after[1])))
        q = q.order_by(c.created_ns.desc(), c.score_id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_score(r) for r in conn.execute(q)]

    def delete_score(self, project_id: str, score_id: str) -> bool:
        q = scores.delete().where(scores.c.project_id == project_id, scores.c.score_id == score_id)
        with self._engine.begin() as conn:
            return conn.execute(q).rowcount > 0

    def trace_exists(self, project_id: str, trace_id: str, span_id: str | None) -> bool:
        if span_id is None:
            q = sa.select(traces.c.trace_id).where(traces.c.project_id == project_id, traces.c.trace_id == trace_id)
        else:
            q = sa.select(spans.c.span_id).where(
                spans.c.project_id == project_id, spans.c.trace_id == trace_id, spans.c.span_id == span_id
            )
        with self._engine.connect() as conn:
            return conn.execute(q).first() is not None

    def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]:
        out: list[Score] = []
        with self._engine.connect() as conn:
            for i in range(0, len(trace_ids), 500):
                q = (
                    sa.select(scores)
                    .where(scores.c.project_id == project_id, scores.c.trace_id.in_(trace_ids[i : i + 500]))
                    .order_by(scores.c.created_ns, scores.c.score_id)
                )
                out += [_score(r) for r in conn.execute(q)]
        return out

    def score_points(self, project_id: str, start_ns: int, end_ns: int, name: str | None) -> list[ScorePoint]:
        c = scores.c
        q = sa.select(c.name, c.created_ns, c.value).where(
            c.project_id == project_id, c.created_ns >= start_ns, c.created_ns < end_ns, c.value.is_not(None)
        )
        if name is not None:
            q = q.where(c.name == name)
        with self._engine.connect() as conn:
            return [ScorePoint(r[0], r[1], r[2]) for r in conn.execute(q)]
