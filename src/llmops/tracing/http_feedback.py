"""HTTP adapter for scores, sessions, users, score metrics and trace export under ``/api``.

Every handler authenticates first and takes the project from the credential only (never from the body or
the query), so another project's ids answer 404 and its rows never appear. Include this router before the
trace router: ``/api/traces/export`` must win over ``/api/traces/{trace_id}``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from llmops.core.timeparse import iso, parse_time_ns
from llmops.projects import Principal
from llmops.tracing.export import ExportFormat, TraceExporter
from llmops.tracing.http import score_json, trace_json
from llmops.tracing.query import parse_trace_filter
from llmops.tracing.scores import NewScore, ScoreDataType, ScoreFilter, ScoreService, ScoreSource
from llmops.tracing.sessions import ScoreSummary, SessionService, SessionSummary, Turn, UserSummary

Authenticate = Callable[[Request], Awaitable[Principal]]
_MEDIA = {"jsonl": "application/x-ndjson", "otlp-json": "application/json"}


class ScoreBody(BaseModel):
    trace_id: str = Field(min_length=1, max_length=64)
    span_id: str | None = Field(None, min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    value: bool | float | str = Field(description="number, true/false, or a label")
    data_type: ScoreDataType | None = Field(None, description="default: from the value's JSON type")
    comment: str | None = Field(None, max_length=4000)
    source: ScoreSource = "user"
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


def feedback_json(items: list[ScoreSummary]) -> list[dict[str, Any]]:
    return [asdict(f) for f in items]


def session_json(s: SessionSummary) -> dict[str, Any]:
    return {**asdict(s), "first_time": iso(s.first_ns), "last_time": iso(s.last_ns)}


def user_json(u: UserSummary, feedback: list[ScoreSummary]) -> dict[str, Any]:
    times = {"first_time": iso(u.first_ns), "last_time": iso(u.last_ns)}
    return {**asdict(u), **times, "feedback": feedback_json(feedback)}


def turn_json(t: Turn) -> dict[str, Any]:
    return {**trace_json(t.trace), "input": t.input, "output": t.output, "scores": [score_json(s) for s in t.scores]}


def _time_range(start: str | None, end: str | None) -> tuple[int, int]:
    end_ns = parse_time_ns(end, param="end") or time.time_ns()
    return parse_time_ns(start, param="start") or end_ns - 86_400 * 10**9, end_ns


def create_feedback_router(
    scores: ScoreService, sessions: SessionService, exporter: TraceExporter, authenticate: Authenticate
) -> APIRouter:
    router = APIRouter(prefix="/api")
    _score_routes(router, scores, authenticate)
    _session_routes(router, sessions, authenticate)
    _export_route(router, exporter, authenticate)
    return router


def _score_routes(router: APIRouter, scores: ScoreService, authenticate: Authenticate) -> None:
    @router.post("/scores", status_code=201, tags=["scores"], summary="Score a trace or span (idempotent by key)")
    async def create_score(
        body: ScoreBody, request: Request, response: Response, idempotency_key: str | None = Header(None)
    ) -> dict[str, Any]:
        who = await authenticate(request)
        fields = body.model_dump()
        fields["idempotency_key"] = body.idempotency_key or idempotency_key
        score, created = await scores.create_score(who.project_id, NewScore(**fields))
        response.status_code = 201 if created else 200
        return score_json(score)

    @router.get("/scores", tags=["scores"], summary="List scores, newest first (cursor pagination)")
    async def list_scores(
        request: Request,
        trace_id: str | None = None,
        span_id: str | None = None,
        name: str | None = None,
        source: ScoreSource | None = None,
        cursor: str | None = None,
        limit: int = Query(50, ge=1, le=200),
    ) -> dict[str, Any]:
        who = await authenticate(request)
        flt = ScoreFilter(trace_id.lower() if trace_id else None, span_id, name, source)
        page = await scores.list_scores(who.project_id, flt, cursor=cursor, limit=limit)
        return {"data": [score_json(s) for s in page.items], "next_cursor": page.next_cursor}

    @router.get("/scores/{score_id}", tags=["scores"], summary="One score")
    async def get_score(score_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return score_json(await scores.get_score(who.project_id, score_id))

    @router.delete("/scores/{score_id}", tags=["scores"], summary="Delete a score")
    async def delete_score(score_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        await scores.delete_score(who.project_id, score_id)
        return {"score_id": score_id, "deleted": True}

    @router.get("/metrics/scores", tags=["scores"], summary="Mean score per name over time")
    async def score_metrics(
        request: Request,
        start: str | None = Query(None, description="default: 24 h ago"),
        end: str | None = Query(None, description="default: now"),
        bucket: int = Query(3600, ge=1, description="bucket width in seconds"),
        name: str | None = None,
    ) -> dict[str, Any]:
        who = await authenticate(request)
        start_ns, end_ns = _time_range(start, end)
        return await scores.metrics(who.project_id, start_ns, end_ns, bucket, name=name)


def _session_routes(router: APIRouter, sessions: SessionService, authenticate: Authenticate) -> None:
    @router.get("/sessions", tags=["sessions"], summary="Sessions, most recently active first")
    async def list_sessions(
        request: Request, user: str | None = None, cursor: str | None = None, limit: int = Query(50, ge=1, le=200)
    ) -> dict[str, Any]:
        who = await authenticate(request)
        page = await sessions.list_sessions(who.project_id, user_id=user, cursor=cursor, limit=limit)
        return {"data": [session_json(s) for s in page.items], "next_cursor": page.next_cursor}

    @router.get("/sessions/{session_id:path}", tags=["sessions"], summary="A session: its turns, oldest first")
    async def get_session(
        session_id: str, request: Request, cursor: str | None = None, limit: int = Query(50, ge=1, le=200)
    ) -> dict[str, Any]:
        who = await authenticate(request)
        session, feedback = await sessions.get_session(who.project_id, session_id)
        turns = await sessions.turns(who.project_id, session_id, cursor=cursor, limit=limit)
        return {
            **session_json(session),
            "feedback": feedback_json(feedback),
            "turns": [turn_json(t) for t in turns.items],
            "next_cursor": turns.next_cursor,
        }

    @router.get("/users", tags=["users"], summary="End users, most recently active first, with feedback")
    async def list_users(
        request: Request, cursor: str | None = None, limit: int = Query(50, ge=1, le=200)
    ) -> dict[str, Any]:
        who = await authenticate(request)
        page = await sessions.list_users(who.project_id, cursor=cursor, limit=limit)
        feedback = await sessions.feedback_of_users(who.project_id, [u.user_id for u in page.items])
        data = [user_json(u, feedback.get(u.user_id, [])) for u in page.items]
        return {"data": data, "next_cursor": page.next_cursor}

    @router.get("/users/{user_id:path}", tags=["users"], summary="One end user: totals, feedback, recent sessions")
    async def get_user(user_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        user, feedback = await sessions.get_user(who.project_id, user_id)
        recent = await sessions.list_sessions(who.project_id, user_id=user_id, limit=20)
        return {**user_json(user, feedback), "recent_sessions": [session_json(s) for s in recent.items]}


def _export_route(router: APIRouter, exporter: TraceExporter, authenticate: Authenticate) -> None:
    @router.get(
        "/traces/export",
        tags=["traces"],
        summary="Export every matching trace (same filters as GET /api/traces), streamed",
        response_class=StreamingResponse,
    )
    async def export_traces(request: Request, format: Literal["otlp-json", "jsonl"] = "jsonl") -> StreamingResponse:
        who = await authenticate(request)
        flt = parse_trace_filter(request.query_params.multi_items())
        fmt: ExportFormat = format
        name = "traces.jsonl" if fmt == "jsonl" else "traces.otlp.json"
        return StreamingResponse(
            exporter.stream(who.project_id, flt, fmt),
            media_type=_MEDIA[fmt],
            headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
        )
