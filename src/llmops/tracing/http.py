"""HTTP adapter for traces and metrics under ``/api``. Every query is scoped to the caller's project."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from llmops.core.timeparse import iso, parse_time_ns
from llmops.projects import Principal
from llmops.tracing.models import MetricsQuery, Span, TraceFilter, TraceSummary
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


def _tree_json(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**span_json(n["span"]), "children": _tree_json(n["children"])} for n in nodes]


def create_tracing_router(service: TraceService, authenticate: Authenticate) -> APIRouter:
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
        cursor: str | None = None,
        limit: int = Query(50, ge=1, le=200),
    ) -> dict[str, Any]:
        who = await authenticate(request)
        flt = TraceFilter(
            parse_time_ns(start, param="start"), parse_time_ns(end, param="end"), model, status, user, session
        )
        page = await service.list_traces(who.project_id, flt, cursor=cursor, limit=limit)
        return {"data": [trace_json(t) for t in page.items], "next_cursor": page.next_cursor}

    @router.get("/traces/{trace_id}", summary="One trace with its span tree")
    async def get_trace(trace_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        trace, spans = await service.get_trace(who.project_id, trace_id.lower())
        return {**trace_json(trace), "spans": _tree_json(span_tree(spans))}

    @router.get("/metrics", summary="Requests, tokens, cost, latency percentiles and errors over time")
    async def metrics(
        request: Request,
        start: str | None = Query(None, description="default: 24 h ago"),
        end: str | None = Query(None, description="default: now"),
        bucket: int = Query(3600, ge=1, description="bucket width in seconds"),
        group_by: Literal["model", "key", "user"] | None = None,
    ) -> dict[str, Any]:
        who = await authenticate(request)
        end_ns = parse_time_ns(end, param="end") or time.time_ns()
        start_ns = parse_time_ns(start, param="start") or end_ns - 86_400 * 10**9
        return await service.metrics(who.project_id, MetricsQuery(start_ns, end_ns, bucket, group_by))

    return router
