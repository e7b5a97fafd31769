"""Export every trace matching a filter, streamed page by page (newest first), so no export is ever capped.

- ``jsonl``: one line per trace: the trace summary with ``spans`` (flat, oldest first) and ``scores``.
- ``otlp-json``: one OTLP/JSON ``ExportTraceServiceRequest`` (``resourceSpans`` → ``scopeSpans`` → ``spans``),
  ids as lower-case hex, times as strings of Unix nanoseconds, the span's columns (model, tokens, user,
  session, cost, messages) folded back into GenAI attributes. Scores are not spans: they are left out here.

Paging is by keyset, so traces recorded while an export runs never shift it (they are newer than the first
page). A failure mid-stream aborts the response instead of ending it cleanly: a partial file is never
mistaken for a whole one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any, Literal, Protocol

import orjson

from llmops.core.timeparse import iso
from llmops.tracing.models import Span, TraceFilter, TraceSummary
from llmops.tracing.scores import Score, ScoreStore
from llmops.tracing.service import TraceService

ExportFormat = Literal["otlp-json", "jsonl"]
PAGE = 200
_CLIENT_KINDS = frozenset({"llm", "embedding"})
_OTLP_HEAD = (
    b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"llmops"}}]},'
    b'"scopeSpans":[{"scope":{"name":"llmops.export"},"spans":['
)
_OTLP_TAIL = b"]}]}]}\n"


class SpanSource(Protocol):
    def spans_of_traces(self, project_id: str, trace_ids: list[str], *, content_only: bool = False) -> list[Span]: ...


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str)


def trace_record(trace: TraceSummary, spans: list[Span], scores: list[Score]) -> dict[str, Any]:
    record = asdict(trace)
    record.pop("project_id")
    record.update(start_time=iso(trace.start_ns), duration_ms=round(trace.duration_ms, 3), tags=list(trace.tags))
    record["spans"] = [{k: v for k, v in asdict(s).items() if k != "project_id"} for s in spans]
    record["scores"] = [{k: v for k, v in asdict(s).items() if k != "project_id"} for s in scores]
    return record


def any_value(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP ``AnyValue`` (int64 as a string, per the OTLP/JSON mapping)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": str(k), "value": any_value(v)} for k, v in value.items()]}}
    return {"stringValue": "" if value is None else str(value)}


def _column_attributes(s: Span) -> dict[str, Any]:
    cols = {
        "gen_ai.operation.name": s.operation,
        "gen_ai.provider.name": s.provider,
        "gen_ai.request.model": s.request_model,
        "gen_ai.response.model": s.response_model,
        "gen_ai.usage.input_tokens": s.input_tokens,
        "gen_ai.usage.output_tokens": s.output_tokens,
        "gen_ai.conversation.id": s.session_id,
        "session.id": s.session_id,
        "user.id": s.user_id,
        "llmops.cost_usd": s.cost_usd,
        "llmops.ttft_ms": s.ttft_ms,
        "llmops.span.kind": s.kind,
        "gen_ai.input.messages": orjson.dumps(s.input).decode() if s.input is not None else None,
        "gen_ai.output.messages": orjson.dumps(s.output).decode() if s.output is not None else None,
    }
    return {k: v for k, v in cols.items() if v is not None}


def otlp_span(s: Span) -> dict[str, Any]:
    attributes = {**_column_attributes(s), **s.attributes}
    span: dict[str, Any] = {
        "traceId": s.trace_id,
        "spanId": s.span_id,
        "name": s.name,
        "kind": 3 if s.kind in _CLIENT_KINDS else 1,
        "startTimeUnixNano": str(s.start_ns),
        "endTimeUnixNano": str(s.end_ns),
        "attributes": [{"key": k, "value": any_value(v)} for k, v in attributes.items()],
        "status": {"code": 2, "message": s.error or ""} if s.status == "error" else {"code": 1},
    }
    if s.parent_span_id:
        span["parentSpanId"] = s.parent_span_id
    return span


class TraceExporter:
    def __init__(self, traces: TraceService, spans: SpanSource, scores: ScoreStore) -> None:
        self._traces = traces
        self._spans = spans
        self._scores = scores

    async def pages(self, project_id: str, flt: TraceFilter) -> AsyncIterator[list[tuple[TraceSummary, list[Span]]]]:
        """Every matching trace with its spans, one page at a time, until the last page."""
        cursor: str | None = None
        while True:
            page = await self._traces.list_traces(project_id, flt, cursor=cursor, limit=PAGE)
            ids = [t.trace_id for t in page.items]
            spans = await asyncio.to_thread(self._spans.spans_of_traces, project_id, ids) if ids else []
            by_trace: dict[str, list[Span]] = {}
            for s in spans:
                by_trace.setdefault(s.trace_id, []).append(s)
            for spans_of in by_trace.values():
                spans_of.sort(key=lambda s: (s.start_ns, s.span_id))
            yield [(t, by_trace.get(t.trace_id, [])) for t in page.items]
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def jsonl(self, project_id: str, flt: TraceFilter) -> AsyncIterator[bytes]:
        async for page in self.pages(project_id, flt):
            ids = [t.trace_id for t, _ in page]
            scores = await asyncio.to_thread(self._scores.scores_of_traces, project_id, ids) if ids else []
            by_trace: dict[str, list[Score]] = {}
            for sc in scores:
                by_trace.setdefault(sc.trace_id, []).append(sc)
            chunk = b"".join(_dumps(trace_record(t, spans, by_trace.get(t.trace_id, []))) + b"\n" for t, spans in page)
            if chunk:
                yield chunk

    async def otlp_json(self, project_id: str, flt: TraceFilter) -> AsyncIterator[bytes]:
        yield _OTLP_HEAD
        first = True
        async for page in self.pages(project_id, flt):
            parts = [_dumps(otlp_span(s)) for _, spans in page for s in spans]
            if parts:
                yield (b"" if first else b",") + b",".join(parts)
                first = False
        yield _OTLP_TAIL

    def stream(self, project_id: str, flt: TraceFilter, fmt: ExportFormat) -> AsyncIterator[bytes]:
        return self.otlp_json(project_id, flt) if fmt == "otlp-json" else self.jsonl(project_id, flt)
