"""SQLAlchemy Core implementation of :class:`~llmops.tracing.costs.CostStore` (SQLite and PostgreSQL).

One aggregate query per report: spans of one project in a time range, grouped in SQL by (UTC bucket, group,
request model, operation, cache status, cache kind), so a report over 100k spans moves a few hundred rows into
Python, never the spans. Cache figures come from the span attributes ``llmops.cache.status`` /
``llmops.cache.kind`` / ``llmops.cache.saved_usd`` (written by the gateway's cache), read with the same JSON
accessor the trace filters use (keys are bound parameters). Uses the ``(project_id, start_ns)`` span index.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.tracing._sql import spans, traces
from llmops.tracing._sql_query import attribute_value, decode_tags, prompt_group
from llmops.tracing.costs import CostGroup, CostRow

_COLUMNS = {
    "project": spans.c.project_id,
    "key": spans.c.key_id,
    "user": spans.c.user_id,
    "model": spans.c.request_model,
}


class SqlCostStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def _group(self, group_by: CostGroup | None) -> Any:
        s = spans.c
        if group_by is None:
            return sa.null()
        if group_by == "prompt":
            return self._guard("llmops.prompt.name", prompt_group(self._dialect, s.attributes))
        if group_by == "tag":
            t = traces.c  # trace ids come from clients: another project may hold the same id (never read its tags)
            return sa.select(t.tags).where(t.trace_id == s.trace_id, t.project_id == s.project_id).scalar_subquery()
        return _COLUMNS[group_by]

    def _guard(self, key: str, value: Any) -> Any:
        """``value`` only where the attributes text contains the quoted key: a substring test is far cheaper than
        parsing the JSON, and most spans carry no cache or prompt attributes (NULL either way when absent)."""
        find = sa.func.instr if self._dialect == "sqlite" else sa.func.strpos
        return sa.case((find(spans.c.attributes, f'"{key}"') > 0, value), else_=sa.null())

    def _attribute(self, key: str) -> Any:
        return self._guard(key, attribute_value(self._dialect, spans.c.attributes, key))

    def cost_rows(
        self, project_id: str, start_ns: int, end_ns: int, bucket_ns: int, group_by: CostGroup | None
    ) -> list[CostRow]:
        s = spans.c
        bucket = (s.start_ns // bucket_ns).label("bucket")
        group = self._group(group_by).label("grp")
        status = self._attribute("llmops.cache.status").label("cache_status")
        kind = self._attribute("llmops.cache.kind").label("cache_kind")
        saved = sa.cast(self._attribute("llmops.cache.saved_usd"), sa.Float)
        q = (
            sa.select(
                bucket,
                group,
                s.request_model,
                s.operation,
                status,
                kind,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(s.cost_usd), 0.0),
                sa.func.sum(sa.case((s.cost_usd.is_(None), 1), else_=0)),
                sa.func.coalesce(sa.func.sum(s.input_tokens), 0),
                sa.func.coalesce(sa.func.sum(s.output_tokens), 0),
                sa.func.coalesce(sa.func.sum(saved), 0.0),
            )
            .where(s.project_id == project_id, s.start_ns >= start_ns, s.start_ns < end_ns, s.operation.is_not(None))
            .group_by(bucket, *([group] if group_by else []), s.request_model, s.operation, status, kind)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            CostRow(
                bucket=int(r[0]),
                groups=_groups(group_by, r[1]),
                model=r[2],
                operation=r[3],
                cache_status=r[4],
                cache_kind=r[5],
                requests=int(r[6]),
                cost_usd=float(r[7]),
                unpriced=int(r[8] or 0),
                input_tokens=int(r[9]),
                output_tokens=int(r[10]),
                saved_usd=float(r[11]),
            )
            for r in rows
        ]


def _groups(group_by: CostGroup | None, value: Any) -> tuple[str | None, ...]:
    """The groups one row counts in: a trace with several tags counts in each tag's group."""
    if group_by == "tag":
        return decode_tags(value) or (None,)
    return (None if value is None else str(value),)
