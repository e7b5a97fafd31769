"""Read-side use cases: trace list (cursor pages), trace detail (span tree), metrics."""

from __future__ import annotations

import asyncio
import base64
import math
from collections import defaultdict
from typing import Any

from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.tracing.models import MetricsQuery, Span, SpanPage, TraceFilter, TracePage, TraceSummary
from llmops.tracing.store import TraceStore

MAX_PAGE = 200
MAX_SPAN_PAGE = 1000
FIRST_SPAN_PAGE = 500  # spans GET /api/traces/{id} returns before it says spans_truncated


def encode_cursor(item: TraceSummary) -> str:
    return base64.urlsafe_b64encode(f"{item.start_ns}:{item.trace_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        start, trace_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        if len(trace_id) != 32:
            raise ValueError(trace_id)
        return int(start), trace_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("cursor is not one this server issued", param="cursor") from exc


def encode_span_cursor(span: Span) -> str:
    return base64.urlsafe_b64encode(f"{span.start_ns}:{span.span_id}".encode()).decode()


def decode_span_cursor(cursor: str) -> tuple[int, str]:
    try:
        start, span_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        if len(span_id) != 16:
            raise ValueError(span_id)
        return int(start), span_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("cursor is not one this server issued", param="cursor") from exc


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _summarise(rows: list[tuple[int, float, str, int, int, float, Any]]) -> dict[str, Any]:
    latencies = sorted(r[1] for r in rows)
    errors = sum(1 for r in rows if r[2] == "error")
    return {
        "requests": len(rows),
        "errors": errors,
        "error_rate": errors / len(rows) if rows else 0.0,
        "input_tokens": sum(r[3] for r in rows),
        "output_tokens": sum(r[4] for r in rows),
        "cost_usd": round(sum(r[5] for r in rows), 8),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p95_ms": percentile(latencies, 0.95),
    }


class TraceService:
    def __init__(self, store: TraceStore) -> None:
        self._store = store

    async def list_traces(
        self, project_id: str, flt: TraceFilter, *, cursor: str | None = None, limit: int = 50
    ) -> TracePage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        after = decode_cursor(cursor) if cursor else None
        items = await asyncio.to_thread(self._store.list_traces, project_id, flt, after=after, limit=limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return TracePage(items=items, next_cursor=encode_cursor(items[-1]) if more else None)

    async def get_trace(self, project_id: str, trace_id: str) -> tuple[TraceSummary, list[Span]]:
        trace = await asyncio.to_thread(self._store.find_trace, project_id, trace_id)
        if trace is None:
            raise NotFoundError(f"trace {trace_id!r} not found", param="trace_id")
        spans = await asyncio.to_thread(self._store.list_spans, project_id, trace_id)
        return trace, spans

    async def get_trace_page(
        self, project_id: str, trace_id: str, *, limit: int = FIRST_SPAN_PAGE
    ) -> tuple[TraceSummary, SpanPage]:
        """The trace and its first ``limit`` spans (a big trace pages on with :meth:`list_spans`)."""
        trace = await asyncio.to_thread(self._store.find_trace, project_id, trace_id)
        if trace is None:
            raise NotFoundError(f"trace {trace_id!r} not found", param="trace_id")
        return trace, await self._span_page(project_id, trace_id, None, limit)

    async def list_spans(self, project_id: str, trace_id: str, *, cursor: str | None, limit: int) -> SpanPage:
        if not 1 <= limit <= MAX_SPAN_PAGE:
            raise InvalidInputError(f"limit must be between 1 and {MAX_SPAN_PAGE}", param="limit")
        after = decode_span_cursor(cursor) if cursor else None
        page = await self._span_page(project_id, trace_id, after, limit)
        if not page.items and after is None:
            await self.get_trace_page(project_id, trace_id, limit=1)  # NotFoundError for an unknown trace
        return page

    async def _span_page(self, project_id: str, trace_id: str, after: tuple[int, str] | None, limit: int) -> SpanPage:
        items = await asyncio.to_thread(self._store.list_span_page, project_id, trace_id, after=after, limit=limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return SpanPage(items, encode_span_cursor(items[-1]) if more else None)

    async def metrics(self, project_id: str, query: MetricsQuery) -> dict[str, Any]:
        if query.end_ns <= query.start_ns:
            raise InvalidInputError("end must be after start", param="end")
        if query.bucket_s < 1 or (query.end_ns - query.start_ns) / 1e9 / query.bucket_s > 2000:
            raise InvalidInputError("bucket too small for this time range (max 2000 buckets)", param="bucket")
        rows = await asyncio.to_thread(
            self._store.llm_span_rows, project_id, query.start_ns, query.end_ns, query.group_by
        )
        bucket_ns = query.bucket_s * 1_000_000_000
        by_bucket: dict[int, list[Any]] = defaultdict(list)
        by_group: dict[Any, list[Any]] = defaultdict(list)
        for r in rows:
            by_bucket[(r[0] - query.start_ns) // bucket_ns].append(r)
            for group in (r[6] or (None,)) if isinstance(r[6], tuple) else (r[6],):  # tags: one row, many groups
                by_group[group].append(r)
        n_buckets = math.ceil((query.end_ns - query.start_ns) / bucket_ns)
        series = [
            {"start_ns": query.start_ns + i * bucket_ns, **_summarise(by_bucket.get(i, []))} for i in range(n_buckets)
        ]
        result: dict[str, Any] = {"totals": _summarise(rows), "series": series, "bucket_s": query.bucket_s}
        if query.group_by:
            groups = [{"group": k, **_summarise(v)} for k, v in by_group.items()]
            result["groups"] = sorted(groups, key=lambda g: -g["requests"])
        return result


def span_tree(spans: list[Span]) -> list[dict[str, Any]]:
    """Nest spans by parent id; spans whose parent is not in the trace become roots."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for s in spans:
        children[s.parent_span_id if s.parent_span_id in ids else None].append(s)

    def build(span: Span, depth: int) -> dict[str, Any]:
        return {"span": span, "depth": depth, "children": [build(c, depth + 1) for c in children[span.span_id]]}

    return [build(root, 0) for root in children[None]]
