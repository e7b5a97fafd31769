"""HTTP adapter for traces and metrics under ``/api``. Every query is scoped to the caller's project."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from llmops.core.timeparse import iso, parse_time_ns
from llmops.projects import Principal
from llmops.tracing.models import GroupBy, MetricsQuery, Span, TraceSummary
from llmops.tracing.query import parse_trace_filter
from llmops.tracing.scores import Score, ScoreService
from llmops.tracing.service import TraceService, span_tree

Authenticate = Callable[[Request], Awaitable[Principal]]


def trace_json(t: TraceSummary) -> dict[str, Any]:
    d = asdict(t)
    d.pop("project_id")
    d.update(start_time=iso(t.start_ns), duration_ms=round(t.duration_ms, 3))
    return d


def span_json(s: Span) -> dict[str, Any]:
    d = asdict(s)
    d.pop("project_id")
    d.update(start_time=iso(s.start_ns), duration_ms=round(s.duration_ms, 3))
    return d


def score_json(s: Score) -> dict[str, Any]:
    d = asdict(s)
    for private in ("project_id", "string_value"):
        d.pop(private)
    d.update(value=s.display_value, created_at=iso(s.created_ns))
    return d


def _tree_json(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**span_json(n["span"]), "children": _tree_json(n["children"])} for n in nodes]


def create_tracing_router(
    service: TraceService, authenticate: Authenticate, *, scores: ScoreService | None = None
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["traces"])

    @router.get("/traces", summary="List traces, newest first (cursor pagination)")
    async def list_traces(
        request: Request,
        start: str | None = Query(None, description="ISO 8601 or Unix seconds (inclusive)"),
        end: str | None = Query(None, description="ISO 8601 or Unix seconds (exclusive)"),
        model: str | None = None,
        status: Literal["ok", "error"] | None = None,
        user: str | None = None,
        session: str | None = None,
        key: str | None = Query(None, description="key id"),
        tag: list[str] | None = Query(None, description="has this tag (repeat: all of them)"),
        q: str | None = Query(None, description="full-text search over inputs/outputs (every word)"),
        min_cost: float | None = Query(None, description="USD, inclusive"),
        max_cost: float | None = Query(None, description="USD, inclusive"),
        min_latency_ms: float | None = None,
        max_latency_ms: float | None = None,
        cursor: str | None = None,
        limit: int = Query(50, ge=1, le=200),
    ) -> dict[str, Any]:
        """Also ``attr.<key>=<value>`` (a span attribute) and ``score.<name>=[gt|gte|lt|lte|eq|ne:]<value>``."""
        who = await authenticate(request)
        flt = parse_trace_filter(request.query_params.multi_items())
        page = await service.list_traces(who.project_id, flt, cursor=cursor, limit=limit)
        return {"data": [trace_json(t) for t in page.items], "next_cursor": page.next_cursor}

    @router.get("/traces/{trace_id}", summary="One trace with the tree of its first 500 spans")
    async def get_trace(trace_id: str, request: Request) -> dict[str, Any]:
        """A bigger trace says ``spans_truncated: true``; page on with ``GET /api/traces/{id}/spans``."""
        who = await authenticate(request)
        trace, page = await service.get_trace_page(who.project_id, trace_id.lower())
        found = await scores.scores_of_traces(who.project_id, [trace.trace_id]) if scores else []
        return {
            **trace_json(trace),
            "spans": _tree_json(span_tree(page.items)),
            "spans_truncated": page.next_cursor is not None,
            "spans_next_cursor": page.next_cursor,
            "scores": [score_json(s) for s in found],
        }

    @router.get("/traces/{trace_id}/spans", summary="A page of a trace's spans in start order (cursor pagination)")
    async def list_trace_spans(
        trace_id: str, request: Request, cursor: str | None = None, limit: int = Query(500, ge=1, le=1000)
    ) -> dict[str, Any]:
        who = await authenticate(request)
        page = await service.list_spans(who.project_id, trace_id.lower(), cursor=cursor, limit=limit)
        return {"data": [span_json(s) for s in page.items], "next_cursor": page.next_cursor}

    @router.get("/metrics", summary="Requests, tokens, cost, latency percentiles and errors over time")
    async def metrics(
        request: Request,
        start: str | None = Query(None, description="default: 24 h ago"),
        end: str | None = Query(None, description="default: now"),
        bucket: int = Query(3600, ge=1, description="bucket width in seconds"),
        group_by: GroupBy | None = None,
    ) -> dict[str, Any]:
        who = await authenticate(request)
        end_ns = parse_time_ns(end, param="end") or time.time_ns()
        start_ns = parse_time_ns(start, param="start") or end_ns - 86_400 * 10**9
        return await service.metrics(who.project_id, MetricsQuery(start_ns, end_ns, bucket, group_by))

    return router
